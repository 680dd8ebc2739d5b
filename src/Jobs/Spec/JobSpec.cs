namespace Scheduler.Jobs.Spec;

/// <summary>What a job is: a long-running service, a batch of tasks run to completion, or a
/// batch run on a cron schedule.</summary>
public enum JobType
{
    Service,
    Batch,
    Cron,
}

/// <summary>What a cron job does when a run is due while the previous one still runs.</summary>
public enum CronConcurrency
{
    /// <summary>Skip the new run.</summary>
    Forbid,

    /// <summary>Start the new run beside the old one.</summary>
    Allow,

    /// <summary>Kill the old run and start the new one.</summary>
    Replace,
}

/// <summary>
/// One job file, validated (see <see cref="JobFileParser"/>). Fields that do not apply to the
/// job's <see cref="Type"/> keep their defaults; the parser refuses them when written.
/// </summary>
public sealed record JobSpec
{
    public required string Name { get; init; }

    public string Role { get; init; } = "default";

    public required JobType Type { get; init; }

    public required TaskSpec Task { get; init; }

    public IReadOnlyList<ConstraintSpec> Constraints { get; init; } = [];

    /// <summary>Service: instances kept running.</summary>
    public int Instances { get; init; } = 1;

    /// <summary>Service: named instances (the notebook case); when set, <see cref="Instances"/> is their count.</summary>
    public IReadOnlyList<string> InstanceNames { get; init; } = [];

    /// <summary>Service: how an ended instance is started again.</summary>
    public RestartPolicy Restart { get; init; } = new();

    /// <summary>Service: how a new version replaces the running one.</summary>
    public UpdatePolicy Update { get; init; } = new();

    /// <summary>Service: stop instances a probe reports idle.</summary>
    public IdleStopSpec? IdleStop { get; init; }

    /// <summary>Batch and cron: tasks that must each finish successfully.</summary>
    public int Count { get; init; } = 1;

    /// <summary>Batch and cron: tasks running at once (0: all).</summary>
    public int Parallelism { get; init; }

    /// <summary>Batch and cron: how failed tasks are retried.</summary>
    public RestartPolicy Retries { get; init; } = new() { Attempts = 0 };

    /// <summary>Batch and cron: the run fails when not done within this time.</summary>
    public TimeSpan? Deadline { get; init; }

    /// <summary>Batch and cron: all tasks start together or none does.</summary>
    public bool Gang { get; init; }

    /// <summary>Cron: the schedule.</summary>
    public string? Schedule { get; init; }

    /// <summary>Cron: the time zone the schedule is read in (IANA id).</summary>
    public string TimeZone { get; init; } = "UTC";

    public CronConcurrency Concurrency { get; init; } = CronConcurrency.Forbid;

    /// <summary>Cron: jobs whose run of the same period must succeed before this job's run starts.</summary>
    public IReadOnlyList<string> DependsOn { get; init; } = [];

    /// <summary>The number of tasks the job wants: instances for a service, count otherwise.</summary>
    public int Desired => Type == JobType.Service ? Instances : Count;
}

/// <summary>The task every instance of a job runs.</summary>
public sealed record TaskSpec
{
    /// <summary>A shell command line (run with <c>/bin/sh -c</c>); or, with an image, the
    /// command run in it (empty: the image's own).</summary>
    public string? Command { get; init; }

    /// <summary>An OCI image reference (<c>oci:DIR:TAG</c>, <c>oci-archive:FILE:TAG</c>, <c>NAME:TAG</c>).</summary>
    public string? Image { get; init; }

    public double Cpus { get; init; } = 0.1;

    /// <summary>MiB.</summary>
    public double Mem { get; init; } = 64;

    /// <summary>MiB.</summary>
    public double Disk { get; init; }

    /// <summary>Ports picked from the offer (their numbers reach the task as PORT0, PORT1, …).</summary>
    public int Ports { get; init; }

    public IReadOnlyDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();

    /// <summary>URIs fetched into the sandbox before the task starts.</summary>
    public IReadOnlyList<UriSpec> Uris { get; init; } = [];

    public HealthCheckSpec? HealthCheck { get; init; }

    public TimeSpan KillGrace { get; init; } = TimeSpan.FromSeconds(5);

    public string? User { get; init; }
}

public sealed record UriSpec(string Value, bool Executable, bool Extract);

/// <summary>A health check: a shell command (exit 0 = healthy) or an HTTP GET on a port.</summary>
public sealed record HealthCheckSpec
{
    public string? Command { get; init; }

    public uint? HttpPort { get; init; }

    public string Path { get; init; } = "/";

    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(2);

    public uint ConsecutiveFailures { get; init; } = 3;

    public TimeSpan GracePeriod { get; init; }
}

/// <summary>Restart (service) or retry (batch) policy: up to <see cref="Attempts"/> restarts,
/// the n-th after <c>Delay × Backoff^(n-1)</c>, capped at <see cref="MaxDelay"/>.</summary>
public sealed record RestartPolicy
{
    /// <summary>Restarts allowed (a service counts them per instance; -1: no limit).</summary>
    public int Attempts { get; init; } = -1;

    public TimeSpan Delay { get; init; } = TimeSpan.FromSeconds(1);

    public double Backoff { get; init; } = 2.0;

    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>The wait before restart number <paramref name="attempt"/> (1-based).</summary>
    public TimeSpan DelayBefore(int attempt)
        => new Resilience.Backoff(Delay, MaxDelay, Backoff) { Jitter = 0 }.Delay(attempt - 1);
}

/// <summary>Rolling update of a service.</summary>
public sealed record UpdatePolicy
{
    /// <summary>Instances replaced at once.</summary>
    public int MaxParallel { get; init; } = 1;

    /// <summary>Healthy instances kept at every moment of the rollout (default: instances - max_parallel).</summary>
    public int? MinHealthy { get; init; }

    /// <summary>How long a new instance has to become healthy before the rollout counts as failed.</summary>
    public TimeSpan HealthyDeadline { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Go back to the last good version when a rollout fails.</summary>
    public bool AutoRevert { get; init; } = true;
}

/// <summary>Idle stop of service instances: <see cref="Command"/> prints the seconds the
/// instance has been idle (run in the instance's sandbox as its health check); when that reaches
/// <see cref="After"/>, the instance is stopped until started again.</summary>
public sealed record IdleStopSpec
{
    public required string Command { get; init; }

    public required TimeSpan After { get; init; }
}

public enum ConstraintOperator
{
    /// <summary>Each instance on an agent with a different value of the attribute.</summary>
    Unique,

    /// <summary>Every instance on agents with the same value (the given one, or the first placed's).</summary>
    Cluster,

    /// <summary>The attribute matches a regular expression.</summary>
    Like,

    /// <summary>The attribute does not match a regular expression.</summary>
    Unlike,

    /// <summary>At most N instances per value of the attribute.</summary>
    MaxPer,
}

/// <summary>A placement rule on an agent attribute (<c>hostname</c> is the agent's host name).</summary>
public sealed record ConstraintSpec(string Attribute, ConstraintOperator Operator, string? Value);
