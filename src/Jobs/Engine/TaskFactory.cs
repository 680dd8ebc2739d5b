using System.Globalization;
using Sched.V1;
using Scheduler.FrameworkSdk;
using Scheduler.Jobs.Spec;
using Scheduler.Jobs.State;

namespace Scheduler.Jobs.Engine;

/// <summary>Turns a job's task spec into a <see cref="TaskBuilder"/> for one instance, and fills in
/// what is known only after carving from an offer (the ports picked, the host).</summary>
internal static class TaskFactory
{
    public const string JobLabel = "jobs.job";
    public const string InstanceLabel = "jobs.instance";
    public const string VersionLabel = "jobs.version";

    public static TaskBuilder Builder(JobSpec spec, InstanceRecord instance, string taskId)
    {
        var t = spec.Task;
        var b = new TaskBuilder(taskId).Name(instance.Id).Cpus(t.Cpus).Mem(t.Mem).KillGrace(t.KillGrace)
            .Label(JobLabel, spec.Name).Label(InstanceLabel, instance.Id).Label(VersionLabel, instance.Version.ToString(CultureInfo.InvariantCulture));
        if (t.Disk > 0)
        {
            b.Disk(t.Disk);
        }
        if (t.Ports > 0)
        {
            b.Ports(t.Ports);
        }
        if (t.Image is not null)
        {
            b.Image(t.Image);
        }
        if (t.Command is not null)
        {
            b.Shell(t.Command);
        }
        foreach (var (k, v) in t.Env)
        {
            b.Env(k, v);
        }
        b.Env("JOB_NAME", spec.Name).Env("JOB_INSTANCE", instance.Id).Env("JOB_INDEX", instance.Index.ToString(CultureInfo.InvariantCulture));
        foreach (var u in t.Uris)
        {
            b.Fetch(u.Value, u.Executable, u.Extract);
        }
        if (t.User is not null)
        {
            b.User(t.User);
        }
        if (t.HealthCheck is { } h)
        {
            if (h.Command is not null)
            {
                b.HealthCheckCommand(h.Command, h.Interval, h.ConsecutiveFailures, h.GracePeriod);
            }
            else
            {
                b.HealthCheckHttp(h.HttpPort!.Value, h.Path, h.Interval, h.ConsecutiveFailures);
            }
        }
        return b;
    }

    /// <summary>Gives the task its host and picked ports as <c>HOST</c>, <c>PORT0</c>, <c>PORT1</c>, …;
    /// a command health check sees the task's environment too (so it can reach <c>$PORT0</c>).</summary>
    public static void AddPlacementEnv(TaskInfo task, Offer offer)
    {
        var env = task.Command?.Env;
        if (env is null)
        {
            return;
        }
        env["HOST"] = offer.Hostname;
        var n = 0;
        foreach (var r in task.Resources.Where(r => r.Name == "ports" && r.Ranges is not null))
        {
            foreach (var range in r.Ranges.Range)
            {
                for (var p = range.Begin; p <= range.End; p++)
                {
                    env[$"PORT{n++}"] = p.ToString(CultureInfo.InvariantCulture);
                }
            }
        }
        if (task.HealthCheck?.Command is { } check)
        {
            foreach (var (k, v) in env)
            {
                check.Env.TryAdd(k, v);
            }
        }
    }
}
