using System.Globalization;
using Scheduler.Jobs.Spec;

namespace Scheduler.Jobs.Engine;

/// <summary>Field-by-field differences between two versions of a job ("task.command: 'a' -> 'b'").</summary>
internal static class SpecDiff
{
    public static IEnumerable<string> Changes(JobSpec a, JobSpec b)
    {
        var list = new List<string>();
        void Check(string field, object? x, object? y)
        {
            var sx = Show(x);
            var sy = Show(y);
            if (sx != sy)
            {
                list.Add($"{field}: {sx} -> {sy}");
            }
        }
        Check("type", a.Type, b.Type);
        Check("role", a.Role, b.Role);
        Check("task.command", a.Task.Command, b.Task.Command);
        Check("task.image", a.Task.Image, b.Task.Image);
        Check("task.resources.cpus", a.Task.Cpus, b.Task.Cpus);
        Check("task.resources.mem", a.Task.Mem, b.Task.Mem);
        Check("task.resources.disk", a.Task.Disk, b.Task.Disk);
        Check("task.resources.ports", a.Task.Ports, b.Task.Ports);
        Check("task.env", string.Join(",", a.Task.Env.OrderBy(e => e.Key, StringComparer.Ordinal)), string.Join(",", b.Task.Env.OrderBy(e => e.Key, StringComparer.Ordinal)));
        Check("task.uris", string.Join(",", a.Task.Uris), string.Join(",", b.Task.Uris));
        Check("task.health_check", a.Task.HealthCheck, b.Task.HealthCheck);
        Check("task.kill_grace", a.Task.KillGrace, b.Task.KillGrace);
        Check("task.user", a.Task.User, b.Task.User);
        Check("constraints", string.Join(",", a.Constraints), string.Join(",", b.Constraints));
        Check("instances", a.Instances, b.Instances);
        Check("instance_names", string.Join(",", a.InstanceNames), string.Join(",", b.InstanceNames));
        Check("restart", a.Restart, b.Restart);
        Check("update", a.Update, b.Update);
        Check("idle_stop", a.IdleStop, b.IdleStop);
        Check("count", a.Count, b.Count);
        Check("parallelism", a.Parallelism, b.Parallelism);
        Check("retries", a.Retries, b.Retries);
        Check("deadline", a.Deadline, b.Deadline);
        Check("gang", a.Gang, b.Gang);
        Check("schedule", a.Schedule, b.Schedule);
        Check("time_zone", a.TimeZone, b.TimeZone);
        Check("concurrency", a.Concurrency, b.Concurrency);
        Check("depends_on", string.Join(",", a.DependsOn), string.Join(",", b.DependsOn));
        return list;
    }

    private static string Show(object? value) => value switch
    {
        null => "(none)",
        string s => $"'{s}'",
        double d => d.ToString(CultureInfo.InvariantCulture),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };
}
