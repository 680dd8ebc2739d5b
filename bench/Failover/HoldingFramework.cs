using System.Diagnostics;
using System.Globalization;
using Sched.V1;
using Scheduler.FrameworkSdk;
using Scheduler.Protocol.Resources;

namespace Scheduler.Bench.Failover;

/// <summary>
/// A framework on the C# SDK that launches <c>total</c> MOCK tasks that run until killed
/// (a few per offer, so they spread over the agents), then declines further offers with a short
/// filter. Records when it (re)subscribed and when offers arrived after <see cref="MarkKill"/>.
/// </summary>
internal sealed class HoldingFramework : IAsyncDisposable
{
    private const int TasksPerOffer = 10;
    private static readonly List<Resource> TaskResources = ResourceText.Parse("cpus:0.01;mem:1");

    private readonly SchedulerClient _client;
    private readonly int _total;
    private readonly string _prefix;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _allRunning = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly HashSet<string> _running = [];
    private readonly object _gate = new();
    private Task? _loop;
    private int _next;
    private long _killAt;
    private long _subscribedAfterKill;
    private long _offerAfterKill;

    public HoldingFramework(IList<string> masters, string name, int total, Microsoft.Extensions.Logging.ILogger? logger, Scheduler.Channels.GrpcChannelSettings? channel = null)
    {
        _total = total;
        _prefix = name + "-t";
        _client = new SchedulerClient(new SchedulerClientOptions
        {
            Masters = masters,
            Framework = new FrameworkInfo { Name = name, Roles = { "bench" }, FailoverTimeoutSeconds = 600 },
            CallTimeout = TimeSpan.FromSeconds(30),
            Channel = channel ?? new Scheduler.Channels.GrpcChannelSettings(),
            Token = null,
            Logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance,
        });
    }

    public string? FrameworkId => _client.FrameworkId;

    public Task AllRunning => _allRunning.Task;

    /// <summary>Distinct tasks seen RUNNING.</summary>
    public int Running
    {
        get
        {
            lock (_gate)
            {
                return _running.Count;
            }
        }
    }

    /// <summary>Terminal updates seen for our tasks (must stay 0: they run until killed).</summary>
    public long Terminal;

    public long FailedCalls;

    /// <summary>Stopwatch timestamp of the first <c>subscribed</c> event after the kill (0: none yet).</summary>
    public long SubscribedAfterKill => Interlocked.Read(ref _subscribedAfterKill);

    /// <summary>Stopwatch timestamp of the first offer after the re-subscription that followed the kill (0: none yet).</summary>
    public long OfferAfterKill => Interlocked.Read(ref _offerAfterKill);

    public void Start() => _loop = Task.Run(() => RunAsync(_stop.Token));

    /// <summary>From now on, the next <c>subscribed</c> and offer events are recorded.</summary>
    public void MarkKill(long timestamp) => Interlocked.Exchange(ref _killAt, timestamp);

    private async Task RunAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var e in _client.ReadEventsAsync(ct))
            {
                var now = Stopwatch.GetTimestamp();
                var killed = Interlocked.Read(ref _killAt) != 0;
                switch (e.EventCase)
                {
                    case Event.EventOneofCase.Subscribed:
                        if (killed)
                        {
                            Interlocked.CompareExchange(ref _subscribedAfterKill, now, 0);
                        }
                        break;
                    case Event.EventOneofCase.Offers:
                        // Only offers of the new leader: ones already in flight from the old
                        // leader when it died arrive before the re-subscription.
                        if (killed && Interlocked.Read(ref _subscribedAfterKill) != 0 && e.Offers.Offers_.Count > 0)
                        {
                            Interlocked.CompareExchange(ref _offerAfterKill, now, 0);
                        }
                        foreach (var offer in e.Offers.Offers_)
                        {
                            Use(offer, ct);
                        }
                        break;
                    case Event.EventOneofCase.Update:
                        OnUpdate(e.Update.Status);
                        break;
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private void Use(Offer offer, CancellationToken ct)
    {
        var n = Math.Min(TasksPerOffer, _total - _next);
        if (n <= 0)
        {
            // Short filter: the resources come back soon, so a new leader has something to offer.
            _ = CallAsync(_client.DeclineAsync([offer.Id], refuseSeconds: 1, ct));
            return;
        }
        var tasks = new List<TaskInfo>(n);
        for (var i = 0; i < n; i++)
        {
            var task = new TaskInfo
            {
                TaskId = _prefix + _next++.ToString(CultureInfo.InvariantCulture),
                Name = "hold",
                AgentId = offer.AgentId,
                Container = new ContainerInfo { Type = ContainerInfo.Types.Type.Mock },
                Labels = { ["mock.run_ms"] = "-1" },
            };
            task.Resources.AddRange(TaskResources);
            tasks.Add(task);
        }
        _ = CallAsync(_client.LaunchAsync(offer, tasks, refuseSeconds: 1, ct));
    }

    private async Task CallAsync(Task call)
    {
        try
        {
            await call.ConfigureAwait(false);
        }
        catch (Exception)
        {
            Interlocked.Increment(ref FailedCalls);
        }
    }

    private void OnUpdate(Sched.V1.TaskStatus status)
    {
        if (!status.TaskId.StartsWith(_prefix, StringComparison.Ordinal))
        {
            return;
        }
        if (status.State == TaskState.TaskRunning)
        {
            lock (_gate)
            {
                if (_running.Add(status.TaskId) && _running.Count == _total)
                {
                    _allRunning.TrySetResult();
                }
            }
        }
        else if (TaskStates.IsTerminal(status.State))
        {
            Interlocked.Increment(ref Terminal);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            using var teardown = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _client.TeardownAsync().WaitAsync(teardown.Token);
        }
        catch (Exception)
        {
            // Best effort: the masters are stopped right after.
        }
        await _client.DisposeAsync();
        if (_loop is not null)
        {
            await _loop.WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { }, TaskScheduler.Default);
        }
        _stop.Dispose();
    }
}
