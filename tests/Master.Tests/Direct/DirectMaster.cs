using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Sched.V1;
using Scheduler.Allocation;
using Scheduler.Master.Loop;
using Scheduler.Master.Registry;
using Scheduler.Master.Telemetry;

namespace Scheduler.Master.Tests.Direct;

/// <summary>
/// A master driven directly, in memory: the real <see cref="MasterLoop"/> and allocator over an
/// <see cref="InMemoryRegistryStore"/>, on a <see cref="FakeTimeProvider"/>, with no gRPC. Time
/// moves only when a test advances it, so agent timeouts, failover deadlines, offer timeouts and
/// decline filters take no wall time. Agents and frameworks are <see cref="DirectAgent"/> and
/// <see cref="DirectFramework"/>, which talk to the loop as the gRPC services do (posting
/// commands, reading outboxes).
/// </summary>
public sealed class DirectMaster : IAsyncDisposable
{
    private CancellationTokenSource _stop = new();
    private CancellationTokenSource _lost = new();
    private RegistryWriter _writer = null!;
    private Task _run = Task.CompletedTask;
    private long _term;

    private DirectMaster(MasterOptions options, FakeTimeProvider time, InMemoryRegistryStore.Contents registry)
    {
        Options = options;
        Time = time;
        Registry = registry;
    }

    public MasterOptions Options { get; }

    public FakeTimeProvider Time { get; }

    /// <summary>The registry every term of this master reads and writes.</summary>
    public InMemoryRegistryStore.Contents Registry { get; }

    public MasterMetrics Metrics { get; } = new();

    /// <summary>The loop of the current leadership term.</summary>
    public MasterLoop Loop { get; private set; } = null!;

    /// <summary>Starts a leading master (term 1) on a fake clock set to 2026-01-01.</summary>
    public static async Task<DirectMaster> StartAsync(Action<MasterOptions>? configure = null)
    {
        var options = new MasterOptions { WorkDir = "(in memory)" };
        configure?.Invoke(options);
        var master = new DirectMaster(options, new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero)), new InMemoryRegistryStore.Contents());
        await master.BeginTermAsync();
        return master;
    }

    /// <summary>Runs <paramref name="body"/> on the loop and returns its result.</summary>
    public Task<T> On<T>(Func<MasterLoop, T> body) => Loop.InvokeAsync(body);

    /// <summary>Returns once every command queued so far has run.</summary>
    public Task SettleAsync() => Loop.InvokeAsync(static _ => 0);

    /// <summary>Agents that heartbeat while time passes (every <see cref="DirectAgent"/> of this master).</summary>
    internal List<DirectAgent> Agents { get; } = [];

    /// <summary>
    /// Moves the clock by <paramref name="by"/> in steps of at most a heartbeat interval while
    /// some agent heartbeats; at each step timers fire as they fall due, every connected agent
    /// that is not <see cref="DirectAgent.Silent"/> heartbeats, and the loop handles what that queued.
    /// </summary>
    public async Task AdvanceAsync(TimeSpan by)
    {
        while (by > TimeSpan.Zero)
        {
            // With nobody to heartbeat, one jump: a tick sees the new time all at once.
            var step = Agents.Any(a => a.Connected && !a.Silent) ? Options.HeartbeatInterval : by;
            var next = by < step ? by : step;
            Time.Advance(next);
            by -= next;
            foreach (var agent in Agents.Where(a => a.Connected && !a.Silent))
            {
                agent.Heartbeat();
            }
            await SettleAsync();
        }
    }

    /// <summary>Runs a full allocation pass now; returns the number of offers made.</summary>
    public Task<int> AllocateAsync() => On(l => l.RunAllocation(true));

    /// <summary>
    /// Ends this leadership term after its registry writes are durable (every stream closes with
    /// UNAVAILABLE, as when a leader steps down) and starts the next term over the same registry,
    /// as a newly elected master would.
    /// </summary>
    public async Task FailoverAsync()
    {
        await EndTermAsync();
        await BeginTermAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await EndTermAsync();
        Metrics.Dispose();
    }

    private async Task BeginTermAsync()
    {
        var store = new InMemoryRegistryStore(Registry);
        var snapshot = await RegistryRecords.LoadAsync(store, "in-memory registry", CancellationToken.None);
        _stop = new CancellationTokenSource();
        _lost = new CancellationTokenSource();
        _writer = new RegistryWriter(store, NullLogger.Instance, () => _stop.Cancel(), _lost.Token);
        var allocator = new HierarchicalDrfAllocator(new AllocatorOptions { AllocationInterval = Options.AllocationInterval }, Time, new Random(0x5EED));
        var self = new MasterInfo { Id = "master-direct", Address = "127.0.0.1:5050", Term = (ulong)++_term };
        Loop = new MasterLoop(Options, Time, allocator, _writer, self, NullLogger.Instance, Metrics, () => null);
        _run = Loop.RunAsync(snapshot, _stop.Token);
        await SettleAsync();
    }

    private async Task EndTermAsync()
    {
        await _stop.CancelAsync();
        await _run;
        await _writer.DisposeAsync();
        await _lost.CancelAsync();
        _stop.Dispose();
        _lost.Dispose();
    }
}
