using Grpc.Net.Client;
using Sched.V1;
using Scheduler.Protocol;
using Grpc.Core;
using TaskStatus = Sched.V1.TaskStatus;
using Scheduler.Channels;

namespace Scheduler.Master.Tests.Harness;

/// <summary>A framework scheduler made of raw GrpcChannel calls: subscribes, records every event,
/// and issues the unary calls with its framework id and stream id.</summary>
public sealed class TestFramework : IAsyncDisposable
{
    private readonly GrpcChannel _channel;
    private CancellationTokenSource _stop = new();
    private AsyncServerStreamingCall<Event>? _call;
    private Task _pump = Task.CompletedTask;

    public TestFramework(GrpcChannel channel, FrameworkInfo info)
    {
        _channel = channel;
        Info = info;
    }

    public static FrameworkInfo DefaultInfo(string role = "default", double failoverSeconds = 60, bool partitionAware = true)
    {
        var info = new FrameworkInfo { Name = "test-framework", Roles = { role }, FailoverTimeoutSeconds = failoverSeconds };
        if (partitionAware)
        {
            info.Capabilities.Add(FrameworkCapability.PartitionAware);
        }
        return info;
    }

    public FrameworkInfo Info { get; }

    public string FrameworkId => Info.Id;

    public string StreamId { get; set; } = "";

    public EventLog<Event> Events { get; private set; } = new();

    /// <summary>Every offer received, one entry per offer (an Event.offers may carry several).</summary>
    public EventLog<Offer> Offers { get; private set; } = new();

    /// <summary>Subscribes (re-subscribes with the known id) and waits for <c>subscribed</c>.</summary>
    public async Task<Event.Types.Subscribed> SubscribeAsync(params string[] suppressedRoles)
    {
        var request = new SubscribeRequest { FrameworkInfo = Info };
        request.SuppressedRoles.AddRange(suppressedRoles);
        var events = new EventLog<Event>();
        var offers = new EventLog<Offer>();
        Events = events;
        Offers = offers;
        _stop = new CancellationTokenSource();
        _call = _channel.AsyncServerStreamingCall(SchedulerMethods.Subscribe, request, new CallOptions(cancellationToken: _stop.Token));
        var call = _call;
        var token = _stop.Token;
        _pump = Task.Run(async () =>
        {
            try
            {
                while (await call.ResponseStream.MoveNext(token))
                {
                    var e = call.ResponseStream.Current;
                    events.Add(e);
                    if (e.EventCase == Event.EventOneofCase.Offers)
                    {
                        foreach (var offer in e.Offers.Offers_)
                        {
                            offers.Add(offer);
                        }
                    }
                }
                events.End(null);
            }
            catch (Exception e)
            {
                events.End(e);
            }
        });
        var subscribed = await events.TakeAsync(e => e.EventCase == Event.EventOneofCase.Subscribed, what: "subscribed");
        Info.Id = subscribed.Subscribed.FrameworkId;
        StreamId = subscribed.Subscribed.StreamId;
        return subscribed.Subscribed;
    }

    /// <summary>Closes the Subscribe stream (the framework disconnects).</summary>
    public async Task DisconnectAsync()
    {
        await _stop.CancelAsync();
        _call?.Dispose();
        try
        {
            await _pump;
        }
        catch (Exception)
        {
        }
    }

    public async Task<Offer> NextOfferAsync(TimeSpan? timeout = null, Func<Offer, bool>? match = null)
    {
        return await Offers.TakeAsync(o => match?.Invoke(o) ?? true, timeout, "an offer");
    }

    public async Task<TaskStatus> NextUpdateAsync(Func<TaskStatus, bool> match, TimeSpan? timeout = null, string? what = null)
    {
        var e = await Events.TakeAsync(e => e.EventCase == Event.EventOneofCase.Update && match(e.Update.Status), timeout, what ?? "a status update");
        return e.Update.Status;
    }

    public Task<TaskStatus> NextUpdateAsync(string taskId, TaskState state, TimeSpan? timeout = null) =>
        NextUpdateAsync(s => s.TaskId == taskId && s.State == state, timeout, $"{state} of {taskId}");

    /// <summary>Acknowledges each update of the task until one in <paramref name="state"/> arrives (acknowledged too).</summary>
    public async Task<TaskStatus> AckUntilAsync(string taskId, TaskState state, TimeSpan? timeout = null)
    {
        while (true)
        {
            var update = await NextUpdateAsync(s => s.TaskId == taskId, timeout, $"{state} of {taskId}");
            if (update.Uuid.Length > 0)
            {
                await AcknowledgeAsync(update);
            }
            if (update.State == state)
            {
                return update;
            }
        }
    }

    public Task<AcceptResponse> AcceptAsync(IEnumerable<string> offerIds, IEnumerable<TaskInfo> tasks, double? refuseSeconds = null)
    {
        var request = new AcceptRequest { FrameworkId = FrameworkId, StreamId = StreamId };
        request.OfferIds.AddRange(offerIds);
        var launch = new Operation.Types.Launch();
        launch.Tasks.AddRange(tasks);
        request.Operations.Add(new Operation { Launch = launch });
        if (refuseSeconds is { } r)
        {
            request.Filters = new Filters { RefuseSeconds = r };
        }
        return _channel.AsyncUnaryCall(SchedulerMethods.Accept, request).ResponseAsync;
    }

    public Task<AcceptResponse> AcceptAsync(AcceptRequest request) => _channel.AsyncUnaryCall(SchedulerMethods.Accept, request).ResponseAsync;

    public Task<DeclineResponse> DeclineAsync(string offerId, double? refuseSeconds = null)
    {
        var request = new DeclineRequest { FrameworkId = FrameworkId, StreamId = StreamId, OfferIds = { offerId } };
        if (refuseSeconds is { } r)
        {
            request.Filters = new Filters { RefuseSeconds = r };
        }
        return _channel.AsyncUnaryCall(SchedulerMethods.Decline, request).ResponseAsync;
    }

    public Task<SuppressResponse> SuppressAsync(params string[] roles) =>
        _channel.AsyncUnaryCall(SchedulerMethods.Suppress, new SuppressRequest { FrameworkId = FrameworkId, StreamId = StreamId, Roles = { roles } }).ResponseAsync;

    public Task<ReviveResponse> ReviveAsync(params string[] roles) =>
        _channel.AsyncUnaryCall(SchedulerMethods.Revive, new ReviveRequest { FrameworkId = FrameworkId, StreamId = StreamId, Roles = { roles } }).ResponseAsync;

    public Task<AcknowledgeResponse> AcknowledgeAsync(TaskStatus status) =>
        _channel.AsyncUnaryCall(SchedulerMethods.Acknowledge, new AcknowledgeRequest
        {
            FrameworkId = FrameworkId,
            StreamId = StreamId,
            AgentId = status.AgentId,
            TaskId = status.TaskId,
            Uuid = status.Uuid,
        }).ResponseAsync;

    public Task<KillResponse> KillAsync(string taskId) =>
        _channel.AsyncUnaryCall(SchedulerMethods.Kill, new KillRequest { FrameworkId = FrameworkId, StreamId = StreamId, TaskId = taskId }).ResponseAsync;

    public Task<ReconcileResponse> ReconcileAsync(params (string TaskId, string AgentId)[] tasks)
    {
        var request = new ReconcileRequest { FrameworkId = FrameworkId, StreamId = StreamId };
        request.Tasks.AddRange(tasks.Select(t => new ReconcileRequest.Types.Task { TaskId = t.TaskId, AgentId = t.AgentId }));
        return _channel.AsyncUnaryCall(SchedulerMethods.Reconcile, request).ResponseAsync;
    }

    /// <summary>A MOCK task using <paramref name="resources"/> of <paramref name="offer"/>'s agent.</summary>
    public static TaskInfo MockTask(string taskId, Offer offer, IEnumerable<Resource> resources)
    {
        var task = new TaskInfo
        {
            TaskId = taskId,
            Name = taskId,
            AgentId = offer.AgentId,
            Container = new ContainerInfo { Type = ContainerInfo.Types.Type.Mock },
        };
        task.Resources.AddRange(resources);
        return task;
    }

    public async ValueTask DisposeAsync() => await DisconnectAsync();
}
