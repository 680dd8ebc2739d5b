namespace Scheduler.Simulation;

/// <summary>How a <see cref="SimulatedAgentHost"/> connects and what its agents offer.</summary>
public sealed class SimulatedAgentOptions
{
    /// <summary>The masters (<c>host:port</c>); agents start with the first and follow leader hints.</summary>
    public IList<string> Masters { get; init; } = [];

    /// <summary>Transport of the links (TLS: the CA and the certificate agents present); null: defaults, plaintext.</summary>
    public Scheduler.Channels.GrpcChannelSettings? Channel { get; init; }

    /// <summary>How many agents to run.</summary>
    public int Count { get; init; } = 100;

    /// <summary>Resources of each agent, Mesos syntax (<c>cpus:16;mem:65536</c>).</summary>
    public string Resources { get; init; } = "cpus:16;mem:65536;disk:100000;ports:[31000-32000]";

    /// <summary>Agent hostnames are this prefix followed by the agent's index.</summary>
    public string HostnamePrefix { get; init; } = "sim-agent-";

    /// <summary>Run time of a task without a <c>mock.run_ms</c> label (zero: finish right after RUNNING).</summary>
    public TimeSpan DefaultRunTime { get; init; } = TimeSpan.Zero;

    /// <summary>Send TASK_STARTING before TASK_RUNNING (off: RUNNING directly, one update fewer).</summary>
    public bool SendStarting { get; init; }

    /// <summary>First re-send delay of an unacknowledged update; doubles up to <see cref="StatusRetryMax"/>.</summary>
    public TimeSpan StatusRetry { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest re-send delay.</summary>
    public TimeSpan StatusRetryMax { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Kill grace period when the task's kill policy has none (matters for <c>mock.ignore_sigterm</c>).</summary>
    public TimeSpan DefaultKillGrace { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Resolution of the shared timer wheel.</summary>
    public TimeSpan TimerTick { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Agents sharing one HTTP/2 channel (the channel opens more connections as needed).</summary>
    public int AgentsPerChannel { get; init; } = 200;

    /// <summary>Most updates in one <c>status_updates</c> message.</summary>
    public int MaxBatch { get; init; } = 2000;

    /// <summary>The clock.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Checks the options; throws <see cref="ArgumentException"/> saying what to fix.</summary>
    public void Validate()
    {
        if (Masters.Count == 0 || Masters.Any(string.IsNullOrWhiteSpace))
        {
            throw new ArgumentException("SimulatedAgentOptions.Masters needs at least one master address (host:port).");
        }
        if (Count < 1)
        {
            throw new ArgumentException($"SimulatedAgentOptions.Count must be at least 1 (got {Count}).");
        }
        if (AgentsPerChannel < 1 || MaxBatch < 1)
        {
            throw new ArgumentException("SimulatedAgentOptions.AgentsPerChannel and MaxBatch must be at least 1.");
        }
        if (StatusRetry <= TimeSpan.Zero || StatusRetryMax < StatusRetry)
        {
            throw new ArgumentException("SimulatedAgentOptions.StatusRetry must be positive and at most StatusRetryMax.");
        }
    }
}
