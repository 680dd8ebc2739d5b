using System.Globalization;
using Sched.V1;
using Scheduler.Jobs.Spec;
using Scheduler.Jobs.State;

namespace Scheduler.Jobs.Engine;

/// <summary>Plans: what a submission would start, stop or restart.</summary>
public sealed partial class JobsEngine
{
    private JobPlan PlanLocked(JobSpec spec)
    {
        var plan = new JobPlan { Name = spec.Name };
        if (!_state.Jobs.TryGetValue(spec.Name, out var job))
        {
            plan.Action = "create";
            plan.NextVersion = 1;
            foreach (var id in InstanceIds(spec, spec.Desired))
            {
                plan.Steps.Add(new PlanStep { Action = "start", Instance = id, Detail = Describe(spec) });
            }
            if (spec.Type == JobType.Cron)
            {
                var next = CronSchedule.Parse(spec.Schedule!, spec.TimeZone).Next(_time.GetUtcNow());
                plan.Steps.Add(new PlanStep { Action = "schedule", Instance = spec.Name, Detail = next is { } n ? $"first run at {Rfc3339(n)}" : "the schedule never fires" });
            }
            return plan;
        }
        var current = _specs[spec.Name];
        plan.CurrentVersion = (uint)job.Version;
        plan.NextVersion = (uint)(job.Versions.Max(v => v.Version) + 1);
        plan.Changes.Add(SpecDiff.Changes(current, spec));
        if (plan.Changes.Count == 0 && !job.Stopped)
        {
            plan.Action = "unchanged";
            plan.NextVersion = (uint)job.Version;
            return plan;
        }
        plan.Action = "update";
        var taskChanged = plan.Changes.Any(RequiresRestart);
        var live = job.Instances.Where(i => InstanceStates.HasTask(i.State) || i.State is InstanceStates.Pending or InstanceStates.Backoff).Select(i => i.Id).ToHashSet();
        var wanted = InstanceIds(spec, spec.Desired).ToList();
        foreach (var id in wanted)
        {
            if (!live.Contains(id) && !job.Instances.Any(i => i.Id == id && i.State is InstanceStates.Finished or InstanceStates.Idle))
            {
                plan.Steps.Add(new PlanStep { Action = "start", Instance = id, Detail = Describe(spec) });
            }
            else if (taskChanged && spec.Type == JobType.Service && live.Contains(id))
            {
                plan.Steps.Add(new PlanStep { Action = "restart", Instance = id, Detail = $"rolling, {spec.Update.MaxParallel} at a time" });
            }
        }
        foreach (var id in live.Where(id => !wanted.Contains(id)).Order(StringComparer.Ordinal))
        {
            plan.Steps.Add(new PlanStep { Action = "stop", Instance = id, Detail = "beyond the new count" });
        }
        return plan;
    }

    /// <summary>Whether a change (from <see cref="SpecDiff"/>) replaces running instances.</summary>
    internal static bool RequiresRestart(string change) =>
        change.StartsWith("task.", StringComparison.Ordinal) || change.StartsWith("constraints", StringComparison.Ordinal) || change.StartsWith("role", StringComparison.Ordinal);

    private static IEnumerable<string> InstanceIds(JobSpec spec, int count) => spec.Type switch
    {
        JobType.Cron => [],
        _ when spec.InstanceNames.Count > 0 => spec.InstanceNames.Select(n => $"{spec.Name}-{n}"),
        _ => Enumerable.Range(0, count).Select(i => $"{spec.Name}-{i.ToString(CultureInfo.InvariantCulture)}"),
    };

    private static string Describe(JobSpec spec)
    {
        var what = spec.Task.Image is { } image ? $"image {image}" : $"'{spec.Task.Command}'";
        return $"{what}, cpus {spec.Task.Cpus.ToString(CultureInfo.InvariantCulture)}, mem {spec.Task.Mem.ToString(CultureInfo.InvariantCulture)} MiB";
    }
}
