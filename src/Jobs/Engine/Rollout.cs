using Scheduler.Jobs.Spec;
using Scheduler.Jobs.State;

namespace Scheduler.Jobs.Engine;

/// <summary>
/// A service's rolling update: instances of older versions are replaced at most
/// <c>max_parallel</c> at a time, and an old instance is killed only while at least
/// <c>min_healthy</c> others stay healthy. A new instance that fails, or is not healthy within
/// <c>healthy_deadline</c> of its launch, fails the rollout; with <c>auto_revert</c> the last good
/// version becomes the job's version again (as a new version number) and rolls out the same way.
/// </summary>
internal static class Rollout
{
    public static bool Step(JobsEngine engine, JobRecord job, JobSpec spec, DateTimeOffset now, EngineActions actions)
    {
        if (job.RollingFrom == 0)
        {
            return false;
        }
        var check = spec.Task.HealthCheck is not null;
        var active = job.Instances.Where(i => i.State is not (InstanceStates.Idle or InstanceStates.Stopped)).ToList();
        var fresh = active.Where(i => i.Version == job.Version).ToList();
        var bad = fresh.FirstOrDefault(i => i.State == InstanceStates.Failed || (i.Attempts > 0 && i.State == InstanceStates.Backoff)
            || (i.LaunchedAt is { } at && InstanceStates.HasTask(i.State) && !JobsEngine.IsHealthy(i, check) && now - at > spec.Update.HealthyDeadline));
        if (bad is not null)
        {
            var why = bad.State is InstanceStates.Failed or InstanceStates.Backoff
                ? $"instance {bad.Id} of version {job.Version} ended: {bad.Message}"
                : $"instance {bad.Id} of version {job.Version} not healthy within {YamlFields.Format(spec.Update.HealthyDeadline)}";
            job.Versions.First(v => v.Version == job.Version).Failed = why;
            if (spec.Update.AutoRevert && job.LastGoodVersion != 0 && job.LastGoodVersion != job.Version)
            {
                var to = job.LastGoodVersion;
                engine.Revert(job, to);
                engine.Event(job, $"rollout failed ({why}); reverting to version {to} as version {job.Version}");
                // Instances still on the good version run the same file: they are kept as they are.
                foreach (var i in active.Where(i => i.Version == to))
                {
                    i.Version = job.Version;
                }
                foreach (var i in fresh.Where(i => !InstanceStates.HasTask(i.State)))
                {
                    i.Version = job.Version;
                    i.State = InstanceStates.Pending;
                    i.Attempts = 0;
                    i.NotBefore = null;
                }
            }
            else
            {
                job.RollingFrom = 0;
                engine.Event(job, $"rollout failed ({why}); left as it is (auto_revert off or no good version to go back to)");
            }
            return true;
        }
        var old = active.Where(i => i.Version != job.Version).ToList();
        var changed = false;
        // Old instances that hold no task are switched to the new version at once.
        foreach (var i in old.Where(i => !InstanceStates.HasTask(i.State)))
        {
            i.Version = job.Version;
            i.State = InstanceStates.Pending;
            i.Attempts = 0;
            i.NotBefore = null;
            changed = true;
        }
        old = old.Where(i => InstanceStates.HasTask(i.State)).ToList();
        if (old.Count == 0 && fresh.All(i => JobsEngine.IsHealthy(i, check)))
        {
            job.RollingFrom = 0;
            job.LastGoodVersion = job.Version;
            engine.Event(job, $"version {job.Version} rolled out: {fresh.Count} instances healthy");
            return true;
        }
        var desired = active.Count;
        var minHealthy = spec.Update.MinHealthy ?? Math.Max(0, desired - spec.Update.MaxParallel);
        var healthy = active.Count(i => JobsEngine.IsHealthy(i, check) && i.State != InstanceStates.Killing);
        var inFlight = active.Count(i => (i.Version == job.Version && !JobsEngine.IsHealthy(i, check)) || i.State == InstanceStates.Killing);
        foreach (var victim in old.Where(i => i.State != InstanceStates.Killing).OrderBy(i => JobsEngine.IsHealthy(i, check)).ThenBy(i => i.Id, StringComparer.Ordinal))
        {
            var victimHealthy = JobsEngine.IsHealthy(victim, check);
            if (inFlight >= spec.Update.MaxParallel || (victimHealthy && healthy - 1 < minHealthy))
            {
                break;
            }
            JobsEngine.KillInstance(spec, victim, "replace", actions);
            engine.Event(job, $"replacing instance {victim.Id} (version {victim.Version} -> {job.Version})");
            inFlight++;
            healthy -= victimHealthy ? 1 : 0;
            changed = true;
        }
        return changed;
    }
}
