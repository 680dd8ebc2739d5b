using System.Net;
using System.Threading.Channels;
using Google.Protobuf;
using Sched.V1;
using Scheduler.Hosting;
using Scheduler.Protocol;
using Grpc.Core;

namespace Scheduler.FrameworkSdk.Tests;

/// <summary>
/// A scripted stand-in for a master (a test double, not the real master): a real gRPC server on
/// loopback serving sched.v1.Scheduler, where each Subscribe call is handed to the test to drive
/// and every unary request is recorded. Lets SDK tests exercise redirects, silent masters and
/// refusals that a real master only produces under failure.
/// </summary>
public sealed class ScriptedMaster : IAsyncDisposable
{
    private readonly GrpcServer _server;
    private readonly Channel<Subscription> _subscriptions = Channel.CreateUnbounded<Subscription>();
    private readonly Channel<IMessage> _calls = Channel.CreateUnbounded<IMessage>();

    private ScriptedMaster(GrpcServer server)
    {
        _server = server;
    }

    public string Address => $"127.0.0.1:{_server.BoundEndpoints[0].Port}";

    /// <summary>When set, every call answers UNAVAILABLE with this leader hint.</summary>
    public string? RedirectTo { get; set; }

    /// <summary>Acknowledge calls naming this task fail with NOT_FOUND (as for a task the master forgot).</summary>
    public string? UnknownTask { get; set; }

    /// <summary>When set, every unary call waits for this before it is answered (after it is recorded).</summary>
    public Func<IMessage, Task>? BeforeAnswer { get; set; }

    /// <summary>When set, Subscribe fails with this status.</summary>
    public Status? SubscribeFailure { get; set; }

    public static async Task<ScriptedMaster> StartAsync()
    {
        var service = new ScriptedService();
        var options = new GrpcServerOptions();
        options.Endpoints.Add(new GrpcEndpoint(new IPEndPoint(IPAddress.Loopback, 0)));
        var server = await GrpcServer.StartAsync(options, new GrpcServices().Add(service));
        var master = new ScriptedMaster(server);
        service.Master = master;
        return master;
    }

    /// <summary>The next Subscribe call (waits up to 10 s).</summary>
    public async Task<Subscription> NextSubscriptionAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return await _subscriptions.Reader.ReadAsync(cts.Token);
    }

    /// <summary>The next unary request of type <typeparamref name="T"/> (others are skipped).</summary>
    public async Task<T> NextCallAsync<T>()
        where T : IMessage
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            if (await _calls.Reader.ReadAsync(cts.Token) is T call)
            {
                return call;
            }
        }
    }

    public ValueTask DisposeAsync() => _server.DisposeAsync();

    private Task<TResponse> Record<TRequest, TResponse>(TRequest request)
        where TRequest : IMessage
        where TResponse : new()
    {
        ThrowIfRedirecting();
        if (request is AcknowledgeRequest ack && UnknownTask is { } unknown && (ack.TaskId == unknown || ack.Items.Any(i => i.TaskId == unknown)))
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"task '{unknown}' is not known"));
        }
        _calls.Writer.TryWrite(request);
        return BeforeAnswer is { } hook ? AnswerAfterAsync(hook) : Task.FromResult(new TResponse());

        async Task<TResponse> AnswerAfterAsync(Func<IMessage, Task> wait)
        {
            await wait(request);
            return new TResponse();
        }
    }

    /// <summary>The served <c>sched.v1.Scheduler</c>: every call goes to the scripted master.</summary>
    private sealed class ScriptedService : Sched.V1.Scheduler.SchedulerBase
    {
        public ScriptedMaster Master { get; set; } = null!;

        public override Task Subscribe(SubscribeRequest request, IServerStreamWriter<Event> responseStream, ServerCallContext context) => Master.SubscribeAsync(request, responseStream, context);

        public override Task<AcceptResponse> Accept(AcceptRequest request, ServerCallContext context) => Master.Record<AcceptRequest, AcceptResponse>(request);

        public override Task<DeclineResponse> Decline(DeclineRequest request, ServerCallContext context) => Master.Record<DeclineRequest, DeclineResponse>(request);

        public override Task<ReviveResponse> Revive(ReviveRequest request, ServerCallContext context) => Master.Record<ReviveRequest, ReviveResponse>(request);

        public override Task<SuppressResponse> Suppress(SuppressRequest request, ServerCallContext context) => Master.Record<SuppressRequest, SuppressResponse>(request);

        public override Task<KillResponse> Kill(KillRequest request, ServerCallContext context) => Master.Record<KillRequest, KillResponse>(request);

        public override Task<AcknowledgeResponse> Acknowledge(AcknowledgeRequest request, ServerCallContext context) => Master.Record<AcknowledgeRequest, AcknowledgeResponse>(request);

        public override Task<ReconcileResponse> Reconcile(ReconcileRequest request, ServerCallContext context) => Master.Record<ReconcileRequest, ReconcileResponse>(request);

        public override Task<MessageResponse> Message(MessageRequest request, ServerCallContext context) => Master.Record<MessageRequest, MessageResponse>(request);

        public override Task<TeardownResponse> Teardown(TeardownRequest request, ServerCallContext context) => Master.Record<TeardownRequest, TeardownResponse>(request);

        public override Task<UpdateFrameworkResponse> UpdateFramework(UpdateFrameworkRequest request, ServerCallContext context) => Master.Record<UpdateFrameworkRequest, UpdateFrameworkResponse>(request);
    }

    private void ThrowIfRedirecting()
    {
        if (RedirectTo is { } leader)
        {
            var trailers = new Metadata { { MetadataKeys.Leader, leader } };
            throw new RpcException(new Status(StatusCode.Unavailable, "not the leader; the leader is " + leader), trailers);
        }
    }

    private async Task SubscribeAsync(SubscribeRequest request, IServerStreamWriter<Event> stream, ServerCallContext context)
    {
        ThrowIfRedirecting();
        if (SubscribeFailure is { } failure)
        {
            throw new RpcException(failure);
        }
        var subscription = new Subscription(request, stream);
        _subscriptions.Writer.TryWrite(subscription);
        await subscription.RunAsync(context.CancellationToken);
    }

    /// <summary>One Subscribe call, driven by the test.</summary>
    public sealed class Subscription(SubscribeRequest request, IServerStreamWriter<Event> stream)
    {
        private readonly Channel<Event> _outbox = Channel.CreateUnbounded<Event>();
        private readonly TaskCompletionSource _clientGone = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public SubscribeRequest Request => request;

        /// <summary>Completes when the client cancelled the call (e.g. it gave up on heartbeats).</summary>
        public Task ClientGone => _clientGone.Task;

        public void Send(Event e) => _outbox.Writer.TryWrite(e);

        public void SendSubscribed(string frameworkId, string streamId, double heartbeatSeconds = 30) =>
            Send(new Event { Subscribed = new Event.Types.Subscribed { FrameworkId = frameworkId, StreamId = streamId, HeartbeatIntervalSeconds = heartbeatSeconds } });

        /// <summary>Ends the stream normally (as a master does when it steps down).</summary>
        public void Close() => _outbox.Writer.TryComplete();

        internal async Task RunAsync(CancellationToken ct)
        {
            try
            {
                await foreach (var e in _outbox.Reader.ReadAllAsync(ct))
                {
                    await stream.WriteAsync(e, ct);
                }
            }
            catch (OperationCanceledException)
            {
                _clientGone.TrySetResult();
            }
        }
    }
}
