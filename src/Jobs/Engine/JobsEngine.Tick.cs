using System.Globalization;
using Scheduler.Jobs.Spec;
using Scheduler.Jobs.State;

namespace Scheduler.Jobs.Engine;

/// <summary>Time-driven steps: backoffs ending, rollouts advancing, cron runs starting,
/// dependencies and deadlines.</summary>
public sealed partial class JobsEngine
{
    private static readonly TimeSpan KillRetry = TimeSpan.FromSeconds(3);
    private readonly List<(string TaskId, string AgentId, TimeSpan Grace)> _pendingKills = [];

    /// <summary>Advances every job to the current time.</summary>
    public EngineActions Tick()
    {
        var actions = new EngineActions();
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            actions.Kills.AddRange(_pendingKills);
            _pendingKills.Clear();
            var changed = actions.Kills.Count > 0;
            foreach (var job in _state.Jobs.Values.ToList())
            {
                var spec = _specs[job.Name];
                foreach (var i in job.Instances.Where(i => i.State == InstanceStates.Backoff && i.NotBefore <= now))
                {
                    i.State = InstanceStates.Pending;
                    i.NotBefore = null;
                    changed = true;
                }
                // A kill can be lost (the master failed over, the agent was away): send it again
                // until the task's end is reported.
                foreach (var i in job.Instances.Where(i => i.State == InstanceStates.Killing && i.TaskId is not null))
                {
                    if (i.KillSentAt is null)
                    {
                        i.KillSentAt = now;
                    }
                    else if (now - i.KillSentAt > spec.Task.KillGrace + KillRetry)
                    {
                        i.KillSentAt = now;
                        actions.Kills.Add((i.TaskId!, i.AgentId, spec.Task.KillGrace));
                    }
                }
                if (job.Stopped)
                {
                    continue;
                }
                changed |= spec.Type switch
                {
                    JobType.Service => Rollout.Step(this, job, spec, now, actions),
                    JobType.Batch => BatchDeadline(job, spec, now, actions),
                    _ => CronStep(job, spec, now, actions),
                };
            }
            WantedRoles(actions);
            if (changed)
            {
                _store.Save(_state);
            }
        }
        return actions;
    }

    /// <summary>Fills in the roles that have instances waiting for offers.</summary>
    private void WantedRoles(EngineActions actions)
    {
        actions.RolesKnown = true;
        foreach (var job in _state.Jobs.Values.Where(j => !j.Stopped && j.Instances.Any(i => i.State == InstanceStates.Pending)))
        {
            actions.WantedRoles.Add(_specs[job.Name].Role);
        }
    }

    internal void Event(JobRecord job, string message) => AddEvent(job, message);

    internal static bool KillInstance(JobSpec spec, InstanceRecord i, string after, EngineActions actions) => Kill(spec, i, after, actions);

    /// <summary>Makes an older version the job's version again (a rollout's auto-revert), as a new version number.</summary>
    internal void Revert(JobRecord job, int toVersion)
    {
        var old = job.Versions.First(v => v.Version == toVersion);
        var version = job.Versions.Max(v => v.Version) + 1;
        job.Versions.Add(new JobVersionRecord { Version = version, Submitted = _time.GetUtcNow(), JobFile = old.JobFile, FileName = old.FileName });
        job.Version = version;
        _specs[job.Name] = SpecOf(job, version);
        job.LastGoodVersion = version;
    }

    private bool BatchDeadline(JobRecord job, JobSpec spec, DateTimeOffset now, EngineActions actions)
    {
        if (job.Outcome != "running" || spec.Deadline is not { } deadline || now - job.Started < deadline)
        {
            return false;
        }
        FailRun(job, spec, null, $"not done within its deadline of {YamlFields.Format(deadline)}", actions);
        return true;
    }

    private bool CronStep(JobRecord job, JobSpec spec, DateTimeOffset now, EngineActions actions)
    {
        var changed = false;
        if (job.NextRun is { } due && due <= now)
        {
            job.NextRun = CronSchedule.Parse(spec.Schedule!, spec.TimeZone).Next(now);
            StartRun(job, spec, due, now, actions);
            changed = true;
        }
        foreach (var run in job.Runs.Where(r => r.State == "waiting").ToList())
        {
            changed |= WaitForParents(job, spec, run, now);
        }
        foreach (var run in job.Runs.Where(r => r.State == "running").ToList())
        {
            if (spec.Deadline is { } deadline && now - run.Started >= deadline)
            {
                FailRun(job, spec, run.Id, $"not done within its deadline of {YamlFields.Format(deadline)}", actions);
                changed = true;
            }
        }
        return changed;
    }

    /// <summary>Starts a cron run for <paramref name="period"/> (or a batch job's run now).</summary>
    private void StartRun(JobRecord job, JobSpec spec, DateTimeOffset period, DateTimeOffset now, EngineActions actions)
    {
        if (spec.Type == JobType.Batch)
        {
            job.Instances.RemoveAll(i => !InstanceStates.HasTask(i.State));
            job.Outcome = "running";
            job.Started = now;
            ReconcileCount(job, spec, job.ScaledTo ?? spec.Count, actions);
            AddEvent(job, "run started on request");
            return;
        }
        var id = $"{job.Name}-{period.UtcDateTime.ToString("yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture)}";
        if (job.Runs.Any(r => r.Id == id))
        {
            id += "-" + job.Runs.Count.ToString(CultureInfo.InvariantCulture);
        }
        var active = job.Runs.Where(r => r.State is "running" or "waiting").ToList();
        var run = new RunRecord { Id = id, Period = period, Started = now, Version = job.Version };
        job.Runs.Add(run);
        if (job.Runs.Count > 100)
        {
            job.Runs.RemoveAt(0);
        }
        if (active.Count > 0)
        {
            switch (spec.Concurrency)
            {
                case CronConcurrency.Forbid:
                    run.State = "skipped";
                    run.Ended = now;
                    run.Message = $"run {active[0].Id} still running (concurrency: forbid)";
                    AddEvent(job, $"run {id} skipped: {run.Message}");
                    return;
                case CronConcurrency.Replace:
                    foreach (var old in active)
                    {
                        FailRun(job, spec, old.Id, $"replaced by run {id} (concurrency: replace)", actions);
                    }
                    break;
            }
        }
        if (spec.DependsOn.Count > 0)
        {
            run.State = "waiting";
            run.Message = $"waiting for {string.Join(", ", spec.DependsOn)}";
            AddEvent(job, $"run {id} waits for the runs of {string.Join(", ", spec.DependsOn)} for the same period");
            WaitForParents(job, spec, run, now);
            return;
        }
        LaunchRun(job, spec, run);
    }

    private void LaunchRun(JobRecord job, JobSpec spec, RunRecord run)
    {
        run.State = "running";
        run.Message = "";
        for (var index = 0; index < (job.ScaledTo ?? spec.Count); index++)
        {
            job.Instances.Add(new InstanceRecord { Id = $"{run.Id}-{index.ToString(CultureInfo.InvariantCulture)}", Version = job.Version, Index = index, RunId = run.Id });
        }
        AddEvent(job, $"run {run.Id} started");
    }

    private bool WaitForParents(JobRecord job, JobSpec spec, RunRecord run, DateTimeOffset now)
    {
        foreach (var parent in spec.DependsOn)
        {
            var parentRun = _state.Jobs.TryGetValue(parent, out var p) ? p.Runs.LastOrDefault(r => r.Period == run.Period) : null;
            if (parentRun is null || parentRun.State is "running" or "waiting")
            {
                return false;
            }
            if (parentRun.State != "succeeded")
            {
                run.State = "skipped";
                run.Ended = now;
                run.Message = $"parent {parent}'s run {parentRun.Id} {parentRun.State}";
                AddEvent(job, $"run {run.Id} skipped: {run.Message}");
                return true;
            }
        }
        LaunchRun(job, spec, run);
        return true;
    }

    /// <summary>After a task of a run (batch: the job) finished or failed for good.</summary>
    private void RunProgress(JobRecord job, JobSpec spec, string? runId, EngineActions actions)
    {
        var tasks = job.Instances.Where(i => i.RunId == runId).ToList();
        if (tasks.Any(i => i.State == InstanceStates.Failed))
        {
            var failed = tasks.First(i => i.State == InstanceStates.Failed);
            FailRun(job, spec, runId, $"task {failed.Id} failed: {failed.Message}", actions);
            return;
        }
        if (tasks.Count > 0 && tasks.All(i => i.State == InstanceStates.Finished))
        {
            if (runId is null)
            {
                job.Outcome = "complete";
                AddEvent(job, $"complete: {tasks.Count} tasks finished");
            }
            else if (job.Runs.FirstOrDefault(r => r.Id == runId) is { } run)
            {
                EndRun(job, run, "succeeded", $"{tasks.Count} tasks finished");
                job.Instances.RemoveAll(i => i.RunId == runId);
            }
        }
    }

    private void FailRun(JobRecord job, JobSpec spec, string? runId, string why, EngineActions actions)
    {
        foreach (var i in job.Instances.Where(i => i.RunId == runId))
        {
            if (InstanceStates.HasTask(i.State))
            {
                Kill(spec, i, "stop", actions);
            }
            else if (i.State is InstanceStates.Pending or InstanceStates.Backoff)
            {
                i.State = InstanceStates.Stopped;
            }
        }
        if (runId is null)
        {
            job.Outcome = "failed";
            AddEvent(job, $"failed: {why}");
        }
        else if (job.Runs.FirstOrDefault(r => r.Id == runId) is { } run)
        {
            EndRun(job, run, "failed", why);
        }
    }

    private void EndRun(JobRecord job, RunRecord run, string state, string message)
    {
        run.State = state;
        run.Ended = _time.GetUtcNow();
        run.Message = message;
        AddEvent(job, $"run {run.Id} {state}: {message}");
        // Tasks of ended runs are forgotten once they have no task left.
        job.Instances.RemoveAll(i => i.RunId == run.Id && !InstanceStates.HasTask(i.State));
    }
}
