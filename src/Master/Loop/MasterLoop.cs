using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Sched.V1;
using Scheduler.Allocation;
using Scheduler.Master.Registry;
using Scheduler.Master.State;
using Scheduler.Master.Telemetry;
using Grpc.Core;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Loop;

/// <summary>
/// The single writer of a leading master's state. One task consumes a channel of
/// <see cref="IMasterCommand"/>s; RPC handlers and timers only post commands and await their
/// results. The state is held by owners, each behind a narrow interface — <see cref="AgentBook"/>,
/// <see cref="FrameworkBook"/>, <see cref="TaskBook"/>, <see cref="OfferBook"/>,
/// <see cref="QuotaBook"/>, <see cref="SecretBook"/> — and the allocator; the commands (the
/// partial files MasterLoop.*.cs, one per concern) decide what happens and tell each owner its
/// part. Owners never call each other, the allocator, the registry or an outbox. Nothing here
/// takes a lock. A loop lives for one leadership term: when leadership ends it closes every stream.
/// </summary>
public sealed partial class MasterLoop
{
    private readonly Channel<IMasterCommand> _commands = Channel.CreateUnbounded<IMasterCommand>(new UnboundedChannelOptions { SingleReader = true });
    private readonly MasterOptions _options;
    private readonly TimeProvider _time;
    private readonly IAllocator _allocator;
    private readonly RegistryWriter _registry;
    private readonly ILogger _logger;
    private readonly MasterMetrics _metrics;
    private readonly Func<string?> _leaderHint;
    private readonly AgentLiveness _liveness;
    private readonly AgentBook _agents = new();
    private readonly FrameworkBook _frameworks;
    private readonly TaskBook _tasks;
    private readonly OfferBook _offers = new();
    private readonly QuotaBook _quotaBook = new();
    private readonly SecretBook _secrets = new();
    private readonly List<Outbox<OperatorEvent>> _operatorSubscribers = [];
    private readonly string _offerPrefix;
    private readonly SemaphoreSlim _wake = new(0);
    private int _idle;
    private ITimer? _ticker;
    private int _tickPending;
    private long _nextSessionId;
    private DateTimeOffset _nextFrameworkHeartbeat;
    private DateTimeOffset _recoveryDeadline;
    private volatile MasterGauges _gauges = new(0, 0, new Dictionary<TaskState, int>());
    private DateTimeOffset _nextGauges;

    /// <summary>Who may do what (set before <see cref="RunAsync"/>); open by default.</summary>
    public Security.MasterSecurity Security { get; set; } = Master.Security.MasterSecurity.Open;

    public MasterLoop(MasterOptions options, TimeProvider time, IAllocator allocator, RegistryWriter registry, MasterInfo self, ILogger logger, MasterMetrics metrics, Func<string?> leaderHint)
    {
        _options = options;
        _time = time;
        _allocator = allocator;
        _registry = registry;
        Self = self;
        _logger = logger;
        _metrics = metrics;
        _leaderHint = leaderHint;
        _liveness = new AgentLiveness(options);
        _frameworks = new FrameworkBook(options);
        _tasks = new TaskBook(options);
        _offerPrefix = self.Id.Length >= 8 ? self.Id[..8] + "-" + self.Term : self.Id;
    }

    /// <summary>This master, as told to agents and frameworks.</summary>
    public MasterInfo Self { get; }

    /// <summary>True until re-registration after a failover is over. Offers go on meanwhile, but only
    /// of agents that are back (their tasks are known again); the others are not in the allocator
    /// until they re-register or the re-registration timeout marks them unreachable.</summary>
    public bool Recovering { get; private set; }

    /// <summary>Latest gauge readings, safe to read from any thread.</summary>
    public MasterGauges Gauges => _gauges;

    private DateTimeOffset Now => _time.GetUtcNow();

    private double NowSeconds => _time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;

    /// <summary>Runs <paramref name="body"/> on the loop and returns its result. Throws UNAVAILABLE
    /// when the loop has stopped (leadership ended).</summary>
    public Task<T> InvokeAsync<T>(Func<MasterLoop, T> body)
    {
        var command = new MasterCommand<T>(body);
        if (!_commands.Writer.TryWrite(command))
        {
            return Task.FromException<T>(MasterErrors.NotLeader(_leaderHint()));
        }
        WakeLoop();
        return command.Completion;
    }

    /// <summary>Queues <paramref name="body"/> without waiting for it.</summary>
    public void Post(Action<MasterLoop> body)
    {
        if (_commands.Writer.TryWrite(new MasterAction(body)))
        {
            WakeLoop();
        }
    }

    /// <summary>Loads the registry records, then serves commands until <paramref name="stop"/> fires.</summary>
    public async Task RunAsync(RegistrySnapshot registry, CancellationToken stop)
    {
        Load(registry);
        var period = TimeSpan.FromMilliseconds(Math.Clamp(Math.Min(_options.AllocationInterval.TotalMilliseconds, _options.HeartbeatInterval.TotalMilliseconds / 2), 5, 1000));
        _ticker = _time.CreateTimer(_ => PostTick(), null, period, period);
        using var registration = stop.Register(() =>
        {
            _commands.Writer.TryComplete();
            WakeLoop();
        });
        try
        {
            // A dedicated thread, not a thread-pool worker: under load the loop runs without a
            // pause, and on a two-core machine the pool starts with two workers and grows slowly —
            // a busy loop on one of them would leave every stream reader and writer (pings
            // included) one worker to share, and agents would time out behind it.
            await Task.Factory.StartNew(() => Serve(stop), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        finally
        {
            await _ticker.DisposeAsync();
            Shutdown();
        }
    }

    /// <summary>Executes commands until the channel completes (blocking the calling thread).</summary>
    private void Serve(CancellationToken stop)
    {
        var reader = _commands.Reader;
        while (true)
        {
            while (reader.TryRead(out var command))
            {
                if (stop.IsCancellationRequested)
                {
                    command.Abort(MasterErrors.NotLeader(_leaderHint()));
                    continue;
                }
                try
                {
                    command.Execute(this);
                }
                catch (RpcException)
                {
                }
                catch (Exception e)
                {
                    MasterLog.CommandFailed(_logger, e);
                }
            }
            // Idle: sleep until a writer wakes us. The writer signals the thread directly
            // (WakeLoop), so waking does not wait for a thread-pool worker either.
            Interlocked.Exchange(ref _idle, 1);
            if (reader.TryPeek(out _) || reader.Completion.IsCompleted)
            {
                if (Interlocked.CompareExchange(ref _idle, 0, 1) == 0)
                {
                    _wake.Wait(CancellationToken.None); // a writer saw us idle and released once: consume it
                }
            }
            else
            {
                _wake.Wait(CancellationToken.None); // stop completes the queue and wakes us
            }
            if (reader.Completion.IsCompleted)
            {
                return;
            }
        }
    }

    /// <summary>Wakes the loop's thread if it sleeps (called after every write to the queue).</summary>
    private void WakeLoop()
    {
        if (Interlocked.CompareExchange(ref _idle, 0, 1) == 1)
        {
            _wake.Release();
        }
    }

    private void PostTick()
    {
        if (Interlocked.Exchange(ref _tickPending, 1) == 0)
        {
            Post(l =>
            {
                Interlocked.Exchange(ref l._tickPending, 0);
                l.Tick();
            });
        }
    }

    /// <summary>Time-driven work: recovery end, agent timeouts, failover deadlines, offer
    /// timeouts, framework heartbeats, allocation cycles.</summary>
    private void Tick()
    {
        var now = Now;
        if (Recovering && (now >= _recoveryDeadline || _agents.ExpectedCount == 0))
        {
            FinishRecovery();
        }
        CheckAgentTimeouts(now);
        CollectUnreachableAgents(now);
        CheckFailoverDeadlines(now);
        CheckOfferTimeouts(now);
        if (now >= _nextFrameworkHeartbeat)
        {
            _nextFrameworkHeartbeat = now + _options.FrameworkHeartbeatInterval;
            foreach (var fw in _frameworks.All)
            {
                fw.Subscription?.Outbox.Send(new Event { Heartbeat = new Event.Types.Heartbeat() });
            }
            foreach (var sub in _operatorSubscribers)
            {
                sub.Send(new OperatorEvent { Heartbeat = new OperatorEvent.Types.Heartbeat() });
            }
        }
        if (_allocator.NextCycleDue is { } due && due <= Now)
        {
            RunAllocation(false);
        }
        // Gauges are read only when metrics are collected: refresh them once a second, not on
        // every tick (counting tasks is O(tasks)).
        if (now >= _nextGauges)
        {
            _nextGauges = now + TimeSpan.FromSeconds(1);
            PublishGauges();
        }
    }

    /// <summary>Runs an allocation cycle now (tests and operators); returns the number of offers made.</summary>
    public int RunAllocation(bool force)
    {
        var started = _time.GetTimestamp();
        var grants = _allocator.Allocate(force);
        _metrics.AllocationCycle(_time.GetElapsedTime(started));
        if (grants.Count == 0)
        {
            return 0;
        }
        var batches = new Dictionary<string, List<Offer>>(StringComparer.Ordinal);
        var made = 0;
        foreach (var grant in grants)
        {
            _agents.TryGet(grant.AgentId, out var agent);
            if (agent is not null)
            {
                agent.Resources.Grant(grant.Resources);
            }
            if (agent is null || agent.Status != AgentStatus.AgentActive && agent.Status != AgentStatus.AgentDraining
                || !_frameworks.TryGet(grant.FrameworkId, out var fw) || fw.Subscription is null)
            {
                // Granted to someone who can no longer use it: give it straight back.
                Recover(grant.FrameworkId, grant.AgentId, grant.Resources, null);
                continue;
            }
            var offer = new Offer
            {
                Id = _offers.NextId(_offerPrefix),
                FrameworkId = fw.Id,
                AgentId = agent.Id,
                Hostname = agent.Info.Hostname,
                Role = grant.Role,
                AgentAddress = agent.Info.Address,
            };
            offer.Resources.AddRange(grant.Resources.Select(r =>
            {
                var c = r.Clone();
                c.AllocationRole = grant.Role;
                return c;
            }));
            offer.Attributes.AddRange(agent.Info.Attributes);
            _offers.Add(new OutstandingOffer(offer, _options.OfferTimeout is { } t ? Now + t : null));
            if (!batches.TryGetValue(fw.Id, out var list))
            {
                batches[fw.Id] = list = [];
            }
            list.Add(offer);
            made++;
        }
        foreach (var (fwId, offers) in batches)
        {
            made -= SendOffers(_frameworks.Find(fwId)!, offers);
        }
        _metrics.OffersSent(made);
        return made;
    }

    /// <summary>Returns resources to the allocator and the agent's free pool.</summary>
    private void Recover(string frameworkId, string agentId, IReadOnlyList<Resource> resources, TimeSpan? refuseFor)
    {
        if (resources.Count == 0 && refuseFor is null)
        {
            return;
        }
        if (_agents.TryGet(agentId, out var agent))
        {
            agent.Resources.Release(resources);
        }
        _allocator.RecoverResources(frameworkId, agentId, resources, refuseFor);
    }

    /// <summary>Retires an outstanding offer, tells its framework, and recovers its resources.</summary>
    private void RescindOffer(OutstandingOffer offer, string why, bool tellFramework = true)
    {
        if (_offers.Retire(offer.Offer.Id, why) is null)
        {
            return;
        }
        if (tellFramework && _frameworks.TryGet(offer.Offer.FrameworkId, out var fw))
        {
            fw.Subscription?.Outbox.Send(new Event { Rescind = new Event.Types.Rescind { OfferId = offer.Offer.Id } });
        }
        _metrics.OfferRescinded();
        Recover(offer.Offer.FrameworkId, offer.Offer.AgentId, offer.Offer.Resources, null);
    }

    private void CheckOfferTimeouts(DateTimeOffset now)
    {
        if (_options.OfferTimeout is null)
        {
            return;
        }
        foreach (var offer in _offers.All.Where(o => o.ExpiresAt <= now).ToList())
        {
            RescindOffer(offer, $"it expired: offers are rescinded after the offer timeout of {_options.OfferTimeout.Value.TotalSeconds:0.###} s");
        }
    }

    private void Persist(params RegistryWrite[] writes) => Observe(_registry.Enqueue(writes));

    private void Observe(Task write) => write.ContinueWith(
        t => MasterLog.RegistryWriteFailed(_logger, t.Exception!.GetBaseException().Message, t.Exception),
        CancellationToken.None,
        TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously,
        TaskScheduler.Default);

    private void PublishGauges()
    {
        if (!_metrics.GaugesObserved)
        {
            return;
        }
        var byState = new Dictionary<TaskState, int>();
        foreach (var t in _tasks.AllLive)
        {
            byState[t.State] = byState.GetValueOrDefault(t.State) + 1;
        }
        _gauges = new MasterGauges(_agents.Count, _frameworks.Count, byState, _allocator.GetSnapshot());
    }

    /// <summary>Leadership ended (or the master stops): close every stream at once.</summary>
    private void Shutdown()
    {
        var error = MasterErrors.NotLeader(_leaderHint());
        foreach (var agent in _agents.All)
        {
            agent.Link?.Outbox.Close(error);
        }
        foreach (var fw in _frameworks.All)
        {
            fw.Subscription?.Outbox.Close(error);
        }
        foreach (var sub in _operatorSubscribers)
        {
            sub.Close(error);
        }
        while (_commands.Reader.TryRead(out var command))
        {
            command.Abort(error);
        }
    }

    private void Emit(OperatorEvent e)
    {
        if (_operatorSubscribers.Count == 0)
        {
            return;
        }
        _operatorSubscribers.RemoveAll(s => s.IsClosed);
        foreach (var sub in _operatorSubscribers)
        {
            sub.Send(e);
        }
    }

    /// <summary>Queues registry writes and returns a task that completes when they are durable;
    /// a lost leadership becomes UNAVAILABLE with the leader hint, other failures UNAVAILABLE.</summary>
    private Task PersistDurably(params RegistryWrite[] writes)
    {
        var write = _registry.Enqueue(writes);
        Observe(write);
        return WaitAsync(write);

        async Task WaitAsync(Task t)
        {
            try
            {
                await t.ConfigureAwait(false);
            }
            catch (RegistryFencedException)
            {
                throw MasterErrors.NotLeader(_leaderHint());
            }
            catch (Exception e) when (e is not RpcException)
            {
                throw MasterErrors.Unavailable($"the operations were applied but could not be persisted ({e.Message}); check the registry and retry");
            }
        }
    }
}
