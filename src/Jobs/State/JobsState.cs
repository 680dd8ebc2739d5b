namespace Scheduler.Jobs.State;

/// <summary>
/// Everything the jobs framework must not lose, saved whole after every change (see
/// <see cref="JobStateStore"/>): its framework id (to fail over instead of registering anew),
/// each job's versions, and each instance's current task id, written before the task is launched
/// so a restarted framework reconciles that task instead of launching a second one.
/// </summary>
public sealed class JobsState
{
    public string? FrameworkId { get; set; }

    /// <summary>Source of unique task-id suffixes across restarts.</summary>
    public long NextTaskNumber { get; set; } = 1;

    public Dictionary<string, JobRecord> Jobs { get; set; } = new(StringComparer.Ordinal);
}

public sealed class JobRecord
{
    public string Name { get; set; } = "";

    /// <summary>The version being run (after a revert, an older version's copy with a new number).</summary>
    public int Version { get; set; }

    /// <summary>The last version that rolled out fully (the target of an auto-revert).</summary>
    public int LastGoodVersion { get; set; }

    public List<JobVersionRecord> Versions { get; set; } = [];

    /// <summary>Instances (service) or tasks (batch) or tasks of the cron runs.</summary>
    public List<InstanceRecord> Instances { get; set; } = [];

    public List<RunRecord> Runs { get; set; } = [];

    public List<EventRecord> Events { get; set; } = [];

    /// <summary>Set by scale; otherwise the spec's count.</summary>
    public int? ScaledTo { get; set; }

    public bool Stopped { get; set; }

    /// <summary>Batch: "running", "complete", "failed".</summary>
    public string Outcome { get; set; } = "running";

    public DateTimeOffset Started { get; set; }

    /// <summary>Cron: the next scheduled time.</summary>
    public DateTimeOffset? NextRun { get; set; }

    /// <summary>A rollout in progress: the version it left (0: none).</summary>
    public int RollingFrom { get; set; }
}

public sealed class JobVersionRecord
{
    public int Version { get; set; }

    public DateTimeOffset Submitted { get; set; }

    public string JobFile { get; set; } = "";

    public string FileName { get; set; } = "";

    /// <summary>Set when a rollout of this version failed.</summary>
    public string? Failed { get; set; }
}

public sealed class InstanceRecord
{
    public string Id { get; set; } = "";

    /// <summary>The live or last task of this instance; null before the first launch.</summary>
    public string? TaskId { get; set; }

    public int Version { get; set; }

    /// <summary>See <see cref="InstanceStates"/>.</summary>
    public string State { get; set; } = InstanceStates.Pending;

    public bool? Healthy { get; set; }

    public string AgentId { get; set; } = "";

    public string Hostname { get; set; } = "";

    public Dictionary<string, string> Attributes { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Where the current task listens: PORT0, PORT1, … as given to the task.</summary>
    public Dictionary<string, string> Endpoint { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Failures so far (restarts or retries counted against the policy).</summary>
    public int Attempts { get; set; }

    /// <summary>Backoff: not launched again before this time.</summary>
    public DateTimeOffset? NotBefore { get; set; }

    public DateTimeOffset? LaunchedAt { get; set; }

    public string? PendingReason { get; set; }

    public string? Message { get; set; }

    /// <summary>Cron: the run this task belongs to.</summary>
    public string? RunId { get; set; }

    /// <summary>Batch/cron: the index within the run.</summary>
    public int Index { get; set; }

    /// <summary>A kill was sent; what to do when the task ends ("replace", "remove", "stop", "idle").</summary>
    public string? AfterKill { get; set; }

    /// <summary>When the last kill of the current task was sent (kills are sent again until the task ends).</summary>
    public DateTimeOffset? KillSentAt { get; set; }

    /// <summary>Idle stop: when the probe first reported idle time.</summary>
    public double IdleSeconds { get; set; }
}

public sealed class RunRecord
{
    public string Id { get; set; } = "";

    /// <summary>The scheduled time this run is for (its period).</summary>
    public DateTimeOffset Period { get; set; }

    public DateTimeOffset Started { get; set; }

    public DateTimeOffset? Ended { get; set; }

    /// <summary>"waiting", "running", "succeeded", "failed", "skipped".</summary>
    public string State { get; set; } = "running";

    public string Message { get; set; } = "";

    public int Version { get; set; }
}

public sealed class EventRecord
{
    public DateTimeOffset Time { get; set; }

    public string Message { get; set; } = "";
}

/// <summary>The states of an instance.</summary>
public static class InstanceStates
{
    /// <summary>Wants a task; waits for an offer that fits.</summary>
    public const string Pending = "pending";

    /// <summary>A task id is recorded and the launch sent (or about to be).</summary>
    public const string Staging = "staging";

    public const string Starting = "starting";

    public const string Running = "running";

    /// <summary>A kill was sent.</summary>
    public const string Killing = "killing";

    /// <summary>Failed; waits for <see cref="InstanceRecord.NotBefore"/> to start again.</summary>
    public const string Backoff = "backoff";

    /// <summary>Batch: finished successfully.</summary>
    public const string Finished = "finished";

    /// <summary>Out of restarts or retries.</summary>
    public const string Failed = "failed";

    /// <summary>Stopped by idle stop; starts again on request.</summary>
    public const string Idle = "idle";

    /// <summary>Stopped with the job.</summary>
    public const string Stopped = "stopped";

    public static bool HasTask(string state) => state is Staging or Starting or Running or Killing;
}
