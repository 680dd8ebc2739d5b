using Sched.V1;
using Scheduler.FrameworkSdk;
using Scheduler.Jobs.Spec;
using Scheduler.Jobs.State;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Jobs.Engine;

/// <summary>Instances through their lives: activation of a version, status updates, restarts
/// with backoff, kills and what follows them.</summary>
public sealed partial class JobsEngine
{
    /// <summary>Makes <paramref name="version"/> the job's running version.</summary>
    private void Activate(JobRecord job, JobSpec spec, int version, DateTimeOffset now)
    {
        var previous = job.Version;
        var previousSpec = previous == 0 ? null : _specs[job.Name];
        job.Version = version;
        _specs[job.Name] = spec;
        var wasStopped = job.Stopped;
        job.Stopped = false;
        AddEvent(job, previous == 0 ? $"version {version} submitted" : $"version {version} submitted (was {previous})");
        var actions = new EngineActions();
        switch (spec.Type)
        {
            case JobType.Service:
                ReconcileCount(job, spec, job.ScaledTo ?? spec.Desired, actions);
                var restart = previousSpec is null || SpecDiff.Changes(previousSpec, spec).Any(RequiresRestart);
                foreach (var i in job.Instances)
                {
                    if (i.State is InstanceStates.Pending or InstanceStates.Backoff or InstanceStates.Stopped or InstanceStates.Failed)
                    {
                        i.Version = version;
                        if (i.State is InstanceStates.Stopped or InstanceStates.Failed)
                        {
                            i.State = InstanceStates.Pending;
                            i.Attempts = 0;
                        }
                    }
                    else if (!restart)
                    {
                        i.Version = version;
                    }
                }
                if (restart && job.Instances.Any(i => i.Version != version))
                {
                    job.RollingFrom = previous;
                }
                else if (previous == 0 || !restart)
                {
                    job.LastGoodVersion = job.RollingFrom == 0 ? version : job.LastGoodVersion;
                }
                break;
            case JobType.Batch:
                if (previous == 0 || wasStopped || job.Outcome != "running")
                {
                    job.Instances.RemoveAll(i => !InstanceStates.HasTask(i.State));
                    job.Outcome = "running";
                    job.Started = now;
                }
                ReconcileCount(job, spec, job.ScaledTo ?? spec.Desired, actions);
                foreach (var i in job.Instances.Where(i => i.State == InstanceStates.Pending))
                {
                    i.Version = version;
                }
                break;
            case JobType.Cron:
                job.NextRun = CronSchedule.Parse(spec.Schedule!, spec.TimeZone).Next(now);
                break;
        }
        _pendingKills.AddRange(actions.Kills);
    }

    /// <summary>Adds pending instances or kills extra ones so <paramref name="count"/> remain.</summary>
    private void ReconcileCount(JobRecord job, JobSpec spec, int count, EngineActions actions)
    {
        var wanted = InstanceIds(spec, count).ToList();
        for (var index = 0; index < wanted.Count; index++)
        {
            var id = wanted[index];
            if (!job.Instances.Any(i => i.Id == id))
            {
                job.Instances.Add(new InstanceRecord { Id = id, Version = job.Version, Index = index });
            }
        }
        foreach (var extra in job.Instances.Where(i => i.RunId is null && !wanted.Contains(i.Id)).ToList())
        {
            if (InstanceStates.HasTask(extra.State))
            {
                Kill(spec, extra, "remove", actions);
            }
            else
            {
                job.Instances.Remove(extra);
            }
        }
    }

    /// <summary>Sends a kill for an instance's task; <paramref name="after"/> says what follows its end.</summary>
    private static bool Kill(JobSpec spec, InstanceRecord i, string after, EngineActions actions)
    {
        i.AfterKill = after;
        if (i.TaskId is null || !InstanceStates.HasTask(i.State))
        {
            return false;
        }
        i.State = InstanceStates.Killing;
        i.KillSentAt = null; // stamped by the next tick
        actions.Kills.Add((i.TaskId, i.AgentId, spec.Task.KillGrace));
        return true;
    }

    /// <summary>Applies a task status update; returns kills it implies (a task no instance owns).</summary>
    public EngineActions Observe(TaskStatus status)
    {
        ArgumentNullException.ThrowIfNull(status);
        var actions = new EngineActions();
        lock (_lock)
        {
            // An instance keeps its last task's id after the task ended (to show it); only an
            // instance whose task is still live owns the updates.
            var owner = _state.Jobs.Values.SelectMany(j => j.Instances.Select(i => (Job: j, Instance: i)))
                .FirstOrDefault(x => x.Instance.TaskId == status.TaskId && InstanceStates.HasTask(x.Instance.State));
            if (owner.Instance is null)
            {
                // A task no instance runs any more: a replaced or purged instance's task, or one whose
                // end the instance has seen already. A terminal update again is a repeat (an agent
                // resends an update a failed master never acknowledged, a reconciliation answers it)
                // and changes nothing; a task reported alive must not run beside its replacement.
                if (!status.State.IsTerminal() && status.State != TaskState.TaskUnknown)
                {
                    JobsLog.OrphanTask(_logger, status.TaskId);
                    actions.Kills.Add((status.TaskId, status.AgentId, TimeSpan.FromSeconds(1)));
                }
                return actions;
            }
            var (job, i) = owner;
            var spec = _specs[job.Name];
            if (status.HasHealthy)
            {
                i.Healthy = status.Healthy;
            }
            if (status.State == TaskState.TaskUnknown)
            {
                // The master answers TASK_UNKNOWN only for a task that cannot be running (its agent
                // is registered without it, or no agent could hold it): a launch that was stored
                // but never reached the master (the framework stopped or lost its leadership
                // between the two). The instance starts again, without counting a failure.
                if (i.AfterKill is not null || job.Stopped)
                {
                    Ended(job, spec, i, status, actions);
                }
                else
                {
                    i.State = InstanceStates.Pending;
                    i.Healthy = null;
                    i.Message = $"task {i.TaskId} never started ({status.Message}); placing the instance again";
                    AddEvent(job, $"instance {i.Id}: task {i.TaskId} is unknown to the master; placing the instance again");
                }
                _store.Save(_state);
                return actions;
            }
            if (!status.State.IsTerminal())
            {
                var state = status.State switch
                {
                    TaskState.TaskRunning => InstanceStates.Running,
                    TaskState.TaskStarting => InstanceStates.Starting,
                    TaskState.TaskKilling => InstanceStates.Killing,
                    TaskState.TaskUnreachable => i.State,
                    _ => InstanceStates.Staging,
                };
                if (i.State != InstanceStates.Killing || state == InstanceStates.Killing)
                {
                    i.State = state;
                }
                if (status.State == TaskState.TaskUnreachable)
                {
                    i.Message = $"agent {status.AgentId} unreachable; waiting for it to come back";
                }
                _store.Save(_state);
                return actions;
            }
            Ended(job, spec, i, status, actions);
            _store.Save(_state);
        }
        return actions;
    }

    private void Ended(JobRecord job, JobSpec spec, InstanceRecord i, TaskStatus status, EngineActions actions)
    {
        var now = _time.GetUtcNow();
        var what = $"{status.State.ShortName()}{(status.HasExitCode ? $" (exit {status.ExitCode})" : "")}{(status.Message.Length > 0 ? $": {status.Message}" : "")}";
        i.Message = what;
        i.Healthy = null;
        var after = i.AfterKill;
        i.AfterKill = null;
        switch (after)
        {
            case "remove":
                job.Instances.Remove(i);
                return;
            case "stop":
                i.State = InstanceStates.Stopped;
                if (i.RunId is not null && !job.Runs.Any(r => r.Id == i.RunId && r.State is "running" or "waiting"))
                {
                    job.Instances.Remove(i);
                }
                return;
            case "idle":
                i.State = InstanceStates.Idle;
                AddEvent(job, $"instance {i.Id} stopped: idle");
                return;
            case "replace":
                i.State = InstanceStates.Pending;
                i.Version = job.Version;
                i.Attempts = 0;
                i.NotBefore = null;
                return;
        }
        if (job.Stopped)
        {
            i.State = InstanceStates.Stopped;
            return;
        }
        if (status.State == TaskState.TaskFinished && spec.Type != JobType.Service)
        {
            i.State = InstanceStates.Finished;
            AddEvent(job, $"task {i.Id} finished");
            RunProgress(job, spec, i.RunId, actions);
            return;
        }
        var policy = spec.Type == JobType.Service ? spec.Restart : spec.Retries;
        i.Attempts++;
        if (policy.Attempts >= 0 && i.Attempts > policy.Attempts)
        {
            i.State = InstanceStates.Failed;
            AddEvent(job, $"{(spec.Type == JobType.Service ? "instance" : "task")} {i.Id} {what}; no {(spec.Type == JobType.Service ? "restarts" : "retries")} left ({policy.Attempts} allowed)");
            RunProgress(job, spec, i.RunId, actions);
            return;
        }
        var delay = policy.DelayBefore(i.Attempts);
        i.State = InstanceStates.Backoff;
        i.NotBefore = now + delay;
        var limit = policy.Attempts < 0 ? "" : $"/{policy.Attempts}";
        AddEvent(job, $"{(spec.Type == JobType.Service ? "instance" : "task")} {i.Id} {what}; {(spec.Type == JobType.Service ? "restart" : "retry")} {i.Attempts}{limit} in {YamlFields.Format(delay)}");
    }
}
