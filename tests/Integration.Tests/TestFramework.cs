using Scheduler.Resilience;
using System.Threading.Channels;
using Sched.V1;
using Scheduler.FrameworkSdk;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Integration.Tests;

/// <summary>
/// A framework built on the SDK for tests: reads the event stream in the background, keeps the
/// offers it has not used, and lets a test await updates.
/// </summary>
public sealed class TestFramework : IAsyncDisposable
{
    private readonly Channel<Event> _events = Channel.CreateUnbounded<Event>();
    private readonly List<TaskStatus> _updates = [];
    private readonly List<Offer> _offers = [];
    private readonly List<Offer> _allOffers = [];
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _reader;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TestFramework(string master, string name, string role = "test", double failoverTimeout = 30, bool autoAcknowledge = true, string? frameworkId = null, string principal = "", string? token = null, Scheduler.Channels.Tls.ClientTls? tls = null)
    {
        var framework = new FrameworkInfo { Name = name, FailoverTimeoutSeconds = failoverTimeout, Id = frameworkId ?? "", Principal = principal };
        framework.Roles.Add(role);
        framework.Capabilities.Add(FrameworkCapability.PartitionAware);
        Client = new SchedulerClient(new SchedulerClientOptions
        {
            Masters = master.Split(','),
            Framework = framework,
            AutoAcknowledge = autoAcknowledge,
            Token = token,
            Channel = tls is null ? null : new Scheduler.Channels.GrpcChannelSettings { Tls = tls },
            Backoff = new Backoff(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(1)),
        });
        _reader = Task.Run(ReadAsync);
    }

    public SchedulerClient Client { get; }

    public IReadOnlyList<TaskStatus> Updates
    {
        get
        {
            lock (_lock)
            {
                return _updates.ToList();
            }
        }
    }

    /// <summary>Every offer received, used or not.</summary>
    public IReadOnlyList<Offer> AllOffers
    {
        get
        {
            lock (_lock)
            {
                return [.. _allOffers];
            }
        }
    }

    /// <summary>Takes the next valid offer matching <paramref name="match"/> for the test to use;
    /// held offers that do not match are declined briefly, so their resources come back merged.</summary>
    public async Task<Offer> TakeOfferAsync(Func<Offer, bool> match, TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(60);
        using var cts = new CancellationTokenSource(limit);
        while (true)
        {
            Task changed;
            List<Offer> others;
            lock (_lock)
            {
                changed = _changed.Task;
                if (_offers.FirstOrDefault(match) is { } found)
                {
                    _offers.Remove(found);
                    return found;
                }
                others = [.. _offers];
                _offers.Clear();
            }
            if (others.Count > 0)
            {
                await Client.DeclineAsync(others.Select(o => o.Id), refuseSeconds: 0.1);
            }
            try
            {
                await changed.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"no matching offer within {limit.TotalSeconds:0} s; offers so far: {AllOffers.Count}");
            }
        }
    }

    public async Task<string> SubscribedAsync() => (await Client.WaitForSubscriptionAsync().WaitAsync(TimeSpan.FromSeconds(30))).FrameworkId;

    /// <summary>Waits for an update matching <paramref name="match"/> (already received ones count).</summary>
    public Task<TaskStatus> WaitForUpdateAsync(Func<TaskStatus, bool> match, TimeSpan? timeout = null, int skip = 0) =>
        WaitForAsync(() =>
        {
            lock (_lock)
            {
                return _updates.Where(match).Skip(skip).FirstOrDefault();
            }
        }, timeout ?? TimeSpan.FromSeconds(30), "an update");

    public Task<TaskStatus> WaitForStateAsync(string taskId, TaskState state, TimeSpan? timeout = null) =>
        WaitForUpdateAsync(u => u.TaskId == taskId && u.State == state, timeout);

    /// <summary>Launches one task on the first offer it fits in (waiting for offers as needed).</summary>
    public async Task<TaskInfo> LaunchAsync(TaskBuilder builder, string? agentId = null, TimeSpan? timeout = null)
    {
        var (offer, task) = await WaitForAsync(() =>
        {
            lock (_lock)
            {
                foreach (var o in _offers.Where(o => agentId is null || o.AgentId == agentId))
                {
                    if (new OfferResources(o).TryCarve(builder, out var t))
                    {
                        _offers.Remove(o);
                        return Tuple.Create(o, t);
                    }
                }
                return (Tuple<Offer, TaskInfo>?)null;
            }
        }, timeout ?? TimeSpan.FromSeconds(30), "an offer that fits");
        await Client.LaunchAsync(offer, [task], refuseSeconds: 0.1);
        return task;
    }

    /// <summary>Remove the framework (killing its tasks) on dispose; off for failover tests.</summary>
    public bool TeardownOnDispose { get; set; } = true;

    public async ValueTask DisposeAsync()
    {
        if (TeardownOnDispose && Client.IsConnected)
        {
            try
            {
                await Client.TeardownAsync(new CancellationTokenSource(TimeSpan.FromSeconds(5)).Token);
            }
            catch (Exception e) when (e is Grpc.Core.RpcException or SchedulerException or OperationCanceledException)
            {
            }
        }
        await _stop.CancelAsync();
        await Client.DisposeAsync();
        try
        {
            await _reader;
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task<T> WaitForAsync<T>(Func<T?> probe, TimeSpan timeout, string what)
        where T : class
    {
        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            Task changed;
            lock (_lock)
            {
                changed = _changed.Task;
            }
            if (probe() is { } found)
            {
                return found;
            }
            try
            {
                await changed.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"no {what} within {timeout.TotalSeconds:0} s; updates so far: {string.Join(", ", Updates.Select(u => $"{u.TaskId}:{u.State}"))}");
            }
        }
    }

    private async Task ReadAsync()
    {
        await foreach (var e in Client.ReadEventsAsync(_stop.Token))
        {
            lock (_lock)
            {
                switch (e.EventCase)
                {
                    case Event.EventOneofCase.Offers:
                        _offers.AddRange(e.Offers.Offers_);
                        _allOffers.AddRange(e.Offers.Offers_);
                        break;
                    case Event.EventOneofCase.Rescind:
                        _offers.RemoveAll(o => o.Id == e.Rescind.OfferId);
                        break;
                    case Event.EventOneofCase.Subscribed:
                        _offers.Clear();
                        break;
                    case Event.EventOneofCase.Update:
                        _updates.Add(e.Update.Status);
                        break;
                    case Event.EventOneofCase.Updates:
                        _updates.AddRange(e.Updates.Statuses);
                        break;
                }
                var changed = _changed;
                _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                changed.TrySetResult();
            }
        }
    }
}
