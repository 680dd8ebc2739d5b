using Grpc.Net.Client;
using Sched.V1;
using Scheduler.Protocol;
using Scheduler.Protocol.Resources;
using Grpc.Core;
using Scheduler.Channels;
using Scheduler.Resilience;

namespace Scheduler.Simulation;

/// <summary>Counters of a <see cref="SimulatedAgentHost"/> (read with <see cref="Volatile"/> or Interlocked).</summary>
public sealed class SimulatedAgentCounters
{
    /// <summary>Tasks launched on the simulated agents.</summary>
    public long Launched;

    /// <summary>Tasks the agents still hold (running, or with unacknowledged updates).</summary>
    public long Active;

    /// <summary>Status updates written to the master (first sends and re-sends).</summary>
    public long UpdatesSent;

    /// <summary>Re-sends of updates not acknowledged in time.</summary>
    public long Resends;

    /// <summary>Acknowledgements that matched a pending update.</summary>
    public long Acks;

    /// <summary>Acknowledgements for no pending update (duplicates, late).</summary>
    public long StaleAcks;

    /// <summary><c>status_updates</c> messages written.</summary>
    public long Batches;

    /// <summary>Lost streams that were re-established.</summary>
    public long Reconnects;
}

/// <summary>
/// Runs many simulated agents in one process. Each agent speaks the real AgentLink protocol over
/// its own <c>Connect</c> stream, a <c>LinkSession</c> as the agent's (register, heartbeats,
/// batched status updates re-sent until acknowledged, launch/kill/shutdown/reconcile handling)
/// with the mock executor's semantics (<c>mock.run_ms</c>, <c>mock.exit_code</c>,
/// <c>mock.fail_start</c>, <c>mock.ignore_sigterm</c>); the master cannot tell them from real
/// agents running MOCK tasks. The agents' own timers (re-sends, run times, kill deadlines) share
/// one timer wheel. Nothing is written to disk: a simulated agent
/// needs no durability, so its update queues live in memory only.
/// </summary>
public sealed class SimulatedAgentHost : IAsyncDisposable
{
    private readonly List<SimulatedAgent> _agents = [];
    private readonly List<GrpcChannel> _channels = [];
    private readonly Dictionary<string, GrpcChannel> _extraChannels = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _allRegistered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly HashSet<SimulatedAgent> _registered = [];
    private readonly Lock _gate = new();
    private readonly List<Task> _loops = [];
    private string? _refusal;

    /// <summary>Creates the agents (nothing connects until <see cref="Start"/>).</summary>
    /// <param name="options">Masters, count, resources; validated here.</param>
    public SimulatedAgentHost(SimulatedAgentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        if (!ResourceSet.TryParse(options.Resources, out _, out var error))
        {
            throw new ArgumentException($"SimulatedAgentOptions.Resources \"{options.Resources}\" is not valid: {error}");
        }
        Resources = ResourceText.Parse(options.Resources);
        Wheel = new TimerWheel(options.TimerTick, options.TimeProvider);
        StatusRetry = new Backoff(options.StatusRetry, options.StatusRetryMax) { Jitter = 0 };
        for (var i = 0; i < options.Count; i++)
        {
            if (i % options.AgentsPerChannel == 0)
            {
                _channels.Add(GrpcChannels.ForAddress(options.Masters[0], options.Channel));
            }
            _agents.Add(new SimulatedAgent(this, i, _channels[^1]));
        }
    }

    /// <summary>The options.</summary>
    public SimulatedAgentOptions Options { get; }

    /// <summary>The re-send delays of an unacknowledged update (StatusRetry doubling to StatusRetryMax).</summary>
    internal Backoff StatusRetry { get; }

    /// <summary>Counters (updates sent, acks, re-sends, …).</summary>
    public SimulatedAgentCounters Counters { get; } = new();

    /// <summary>The agents' ids assigned by the master (empty for agents not registered yet).</summary>
    public IReadOnlyList<string> AgentIds => _agents.Select(a => a.AgentId).ToList();

    /// <summary>Tasks the agents hold now (running, or with unacknowledged updates).</summary>
    public long ActiveTasks => Interlocked.Read(ref Counters.Active);

    /// <summary>Why an agent was refused by the master, if one was.</summary>
    public string? Refusal => Volatile.Read(ref _refusal);

    internal IReadOnlyList<Resource> Resources { get; }

    internal TimerWheel Wheel { get; }

    internal string BootId { get; } = Guid.NewGuid().ToString();

    /// <summary>Starts the timer wheel and connects every agent.</summary>
    public void Start()
    {
        lock (_gate)
        {
            if (_loops.Count > 0)
            {
                return;
            }
            _loops.Add(Task.Run(() => Wheel.RunAsync(t => t.Agent.OnTimer(t), _stop.Token)));
            foreach (var agent in _agents)
            {
                _loops.Add(Task.Run(() => agent.RunAsync(_stop.Token)));
            }
        }
    }

    /// <summary>Waits until every agent has registered once.</summary>
    /// <param name="timeout">How long to wait.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    public async Task WaitForRegistrationAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        try
        {
            await _allRegistered.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            int n;
            lock (_gate)
            {
                n = _registered.Count;
            }
            throw new TimeoutException($"only {n} of {_agents.Count} simulated agents registered within {timeout.TotalSeconds:0.#} s{(Refusal is { } r ? "; " + r : "")}");
        }
    }

    /// <summary>Disconnects every agent (their tasks vanish with them) and stops the timers.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        Task[] loops;
        lock (_gate)
        {
            loops = [.. _loops];
        }
        try
        {
            await Task.WhenAll(loops).WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException)
        {
        }
        foreach (var c in _channels.Concat(_extraChannels.Values))
        {
            c.Dispose();
        }
        _stop.Dispose();
    }

    internal void Registered(SimulatedAgent agent)
    {
        lock (_gate)
        {
            if (_registered.Add(agent) && _registered.Count == _agents.Count)
            {
                _allRegistered.TrySetResult();
            }
        }
    }

    internal void Refused(string why)
    {
        Interlocked.CompareExchange(ref _refusal, why, null);
        _allRegistered.TrySetException(new InvalidOperationException(why));
    }

    internal GrpcChannel ChannelFor(string address)
    {
        lock (_gate)
        {
            if (!_extraChannels.TryGetValue(address, out var channel))
            {
                channel = GrpcChannels.ForAddress(address, Options.Channel);
                _extraChannels[address] = channel;
            }
            return channel;
        }
    }
}
