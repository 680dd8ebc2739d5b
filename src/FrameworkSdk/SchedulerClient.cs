using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Sched.V1;
using Scheduler.Protocol;
using Scheduler.Protocol.Masters;
using Grpc.Core;
using Scheduler.Channels;

namespace Scheduler.FrameworkSdk;

/// <summary>
/// A framework's connection to the masters. It subscribes (and keeps re-subscribing with the
/// framework id it was given), follows the leader, detects lost connections by missed heartbeats,
/// delivers events through <see cref="ReadEventsAsync"/> and sends the framework's calls with the
/// current <c>framework_id</c> and <c>stream_id</c> filled in.
/// </summary>
/// <remarks>
/// Events have a single consumer: either <see cref="ReadEventsAsync"/> or a
/// <see cref="SchedulerDriver"/>. Calls are thread-safe and may be made from any thread; a call
/// made while the client is (re)connecting waits for the subscription up to
/// <see cref="SchedulerClientOptions.CallTimeout"/>.
/// </remarks>
public sealed partial class SchedulerClient : IAsyncDisposable
{
    private readonly SchedulerClientOptions _options;
    private readonly MasterDirectory _masters;
    private readonly Channel<SchedulerNotification> _inbox = Channel.CreateUnbounded<SchedulerNotification>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly Channel<AcknowledgeRequest.Types.Item> _pendingAcks = Channel.CreateUnbounded<AcknowledgeRequest.Types.Item>();
    private readonly CancellationTokenSource _stop = new();
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private TaskCompletionSource<Event.Types.Subscribed> _subscribed = NewSubscribedSource();
    private Event.Types.Subscribed? _current;
    private string _frameworkId;
    private Task? _subscriptionLoop;
    private Task? _acknowledgementLoop;
    private int _disposed;

    /// <summary>Creates a client; nothing is sent until <see cref="Start"/> (or the first read or call).</summary>
    /// <param name="options">Masters, framework, behaviour; validated here.</param>
    public SchedulerClient(SchedulerClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        var channel = options.Channel?.Copy() ?? new Scheduler.Channels.GrpcChannelSettings { Tls = SchedulerClientOptions.DefaultTls() };
        if (string.IsNullOrEmpty(channel.BearerToken))
        {
            channel.BearerToken = options.Token;
        }
        _masters = new MasterDirectory(options.Masters, channel);
        _logger = options.Logger;
        _time = options.TimeProvider;
        _frameworkId = options.Framework.Id ?? "";
    }

    /// <summary>The framework id, once the master assigned one (or the configured one).</summary>
    public string? FrameworkId
    {
        get
        {
            lock (_lock)
            {
                return _frameworkId.Length == 0 ? null : _frameworkId;
            }
        }
    }

    /// <summary>The current subscription's stream id; null while disconnected.</summary>
    public string? StreamId => CurrentSubscription?.StreamId;

    /// <summary>Whether a subscription is established now.</summary>
    public bool IsConnected => CurrentSubscription is not null;

    /// <summary>The master the client talks to (the leader, as far as it knows).</summary>
    public string Master => _masters.Current;

    /// <summary>Why the client stopped for good (removed by the master, refused, torn down); null while running.</summary>
    public string? TerminationReason { get; private set; }

    /// <summary>The options the client was created with.</summary>
    public SchedulerClientOptions Options => _options;

    private Event.Types.Subscribed? CurrentSubscription
    {
        get
        {
            lock (_lock)
            {
                return _current;
            }
        }
    }

    /// <summary>Starts subscribing in the background. Idempotent.</summary>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        lock (_lock)
        {
            if (_subscriptionLoop is not null)
            {
                return;
            }
            _subscriptionLoop = Task.Run(() => RunSubscriptionAsync(_stop.Token));
            _acknowledgementLoop = Task.Run(() => RunAcknowledgementsAsync(_stop.Token));
        }
    }

    /// <summary>Waits until a subscription is established and returns its <c>subscribed</c> event.</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    public Task<Event.Types.Subscribed> WaitForSubscriptionAsync(CancellationToken cancellationToken = default)
    {
        Start();
        Task<Event.Types.Subscribed> task;
        lock (_lock)
        {
            task = _subscribed.Task;
        }
        return task.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// The events from the master, in order, across reconnections: <c>subscribed</c> (again after
    /// each reconnection), offers, rescinds, updates, messages, failures, heartbeats and errors.
    /// The sequence ends when the client stops: after an <c>error</c> event (the framework was
    /// removed or refused), after <see cref="TeardownAsync"/>, or on disposal. With auto-acknowledge
    /// on, each update is acknowledged once the consumer asks for the next event.
    /// </summary>
    /// <param name="cancellationToken">Stops reading (the client keeps running).</param>
    public IAsyncEnumerable<Event> ReadEventsAsync(CancellationToken cancellationToken = default)
    {
        Start();
        return ReadOnlyEventsAsync(cancellationToken);
    }

    private async IAsyncEnumerable<Event> ReadOnlyEventsAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var notification in ReadNotificationsAsync(cancellationToken).ConfigureAwait(false))
        {
            if (notification.Event is { } e)
            {
                yield return e;
            }
        }
    }

    /// <summary>Events and disconnection notices; acknowledges updates after the consumer processed them.</summary>
    internal async IAsyncEnumerable<SchedulerNotification> ReadNotificationsAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        Start();
        while (await _inbox.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (_inbox.Reader.TryRead(out var notification))
            {
                yield return notification;
                if (_options.AutoAcknowledge && notification.Event is { } e)
                {
                    EnqueueAcknowledgements(e);
                }
            }
        }
    }

    /// <summary>Stops the client: closes the subscription (the master starts the framework's
    /// failover timeout) and ends the event sequence. Tasks keep running.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        Task[] loops;
        lock (_lock)
        {
            loops = new[] { _subscriptionLoop, _acknowledgementLoop }.OfType<Task>().ToArray();
        }
        try
        {
            await Task.WhenAll(loops).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _inbox.Writer.TryComplete();
        _masters.Dispose();
        _stop.Dispose();
    }

    /// <summary>Redirects retried after 50–150 ms before the backoff applies (≈ 10 s).</summary>
    private const int QuickRedirects = 100;

    private static TaskCompletionSource<Event.Types.Subscribed> NewSubscribedSource() =>
        new(TaskCreationOptions.RunContinuationsAsynchronously);

    private async Task RunSubscriptionAsync(CancellationToken ct)
    {
        var failures = 0;
        var redirects = 0;
        var leaderless = 0;
        while (!ct.IsCancellationRequested)
        {
            var address = _masters.Current;
            var outcome = await SubscribeOnceAsync(address, ct).ConfigureAwait(false);
            if (outcome.Kind == OutcomeKind.Stopped)
            {
                break;
            }
            if (outcome.Kind == OutcomeKind.Fatal)
            {
                Terminate(outcome.Reason, publishError: !outcome.ErrorEventDelivered);
                return;
            }
            if (outcome.WasSubscribed)
            {
                failures = 0;
                redirects = 0;
                leaderless = 0;
                MarkDisconnected(outcome.Reason);
            }
            if (outcome.Kind == OutcomeKind.Redirect)
            {
                // A live master answered: an election is under way or over. Connection failures
                // before it (the dead leader) do not count towards the backoff.
                failures = 0;
                var followed = _masters.FollowLeader(outcome.Leader);
                SdkLog.NotLeader(_logger, address, followed ? "following the leader " + outcome.Leader : "trying the next master");
                if (followed && redirects++ < 3)
                {
                    continue;
                }
            }
            else
            {
                SdkLog.SubscriptionFailed(_logger, address, outcome.Reason);
                if (!outcome.WasSubscribed)
                {
                    _masters.MoveNext();
                }
            }
            try
            {
                // Quick retries while a round through the configured masters is not exhausted or
                // live followers answer (an election is under way); backoff after a failed round.
                // Redirects without a leader that answers are retried quickly for a while (a
                // lease TTL or two), then with the backoff too, so that a long outage of the
                // election (etcd down) does not turn every framework into a busy poller.
                var round = _masters.Configured.Count;
                TimeSpan delay;
                if (outcome.Kind == OutcomeKind.Redirect)
                {
                    delay = ++leaderless <= QuickRedirects
                        ? TimeSpan.FromMilliseconds(50 + (_options.Random.NextDouble() * 100))
                        : _options.Backoff.Delay(leaderless - QuickRedirects - 1, _options.Random);
                }
                else
                {
                    delay = failures < round
                        ? TimeSpan.FromMilliseconds(50 + (_options.Random.NextDouble() * 100))
                        : _options.Backoff.Delay(failures - round, _options.Random);
                    failures++;
                }
                await Task.Delay(delay, _time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        _inbox.Writer.TryComplete();
    }

    private async Task<Outcome> SubscribeOnceAsync(string address, CancellationToken ct)
    {
        var info = _options.Framework.Clone();
        lock (_lock)
        {
            info.Id = _frameworkId;
        }
        var request = new SubscribeRequest { FrameworkInfo = info };
        request.SuppressedRoles.Add(_options.SuppressedRoles);

        using var watchdog = new CancellationTokenSource(_options.SubscribeTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, watchdog.Token);
        var subscribed = false;
        var heartbeatTimeout = TimeSpan.Zero;
        try
        {
            using var call = _masters.ChannelFor(address).AsyncServerStreamingCall(SchedulerMethods.Subscribe, request, new CallOptions(cancellationToken: linked.Token));
            while (await call.ResponseStream.MoveNext(linked.Token).ConfigureAwait(false))
            {
                var e = call.ResponseStream.Current;
                if (e.EventCase == Event.EventOneofCase.Subscribed)
                {
                    heartbeatTimeout = TimeSpan.FromSeconds(e.Subscribed.HeartbeatIntervalSeconds * _options.MissedHeartbeats);
                    subscribed = true;
                    MarkSubscribed(e.Subscribed, address);
                }
                if (subscribed)
                {
                    watchdog.CancelAfter(heartbeatTimeout > TimeSpan.Zero ? heartbeatTimeout : Timeout.InfiniteTimeSpan);
                }
                await _inbox.Writer.WriteAsync(SchedulerNotification.Of(e), ct).ConfigureAwait(false);
                if (e.EventCase == Event.EventOneofCase.Error)
                {
                    return new Outcome(OutcomeKind.Fatal, "the master removed the framework: " + e.Error.Message, subscribed) { ErrorEventDelivered = true };
                }
            }
            return new Outcome(OutcomeKind.Lost, $"master {address} closed the subscription stream", subscribed);
        }
        catch (Exception) when (ct.IsCancellationRequested)
        {
            return new Outcome(OutcomeKind.Stopped, "stopped", subscribed);
        }
        catch (Exception) when (watchdog.IsCancellationRequested)
        {
            var reason = subscribed
                ? $"no heartbeat from master {address} for {heartbeatTimeout.TotalSeconds:0.#} s ({_options.MissedHeartbeats} missed)"
                : $"master {address} did not confirm the subscription within {_options.SubscribeTimeout.TotalSeconds:0.#} s";
            return new Outcome(OutcomeKind.Lost, reason, subscribed);
        }
        catch (RpcException e)
        {
            return Classify(e, address, subscribed);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            return new Outcome(OutcomeKind.Lost, $"cannot reach master {address}: {e.Message}", subscribed);
        }
    }

    private static Outcome Classify(RpcException e, string address, bool subscribed)
    {
        switch (e.StatusCode)
        {
            case StatusCode.Unavailable when NotLeader.Is(e, out var leader):
                return new Outcome(OutcomeKind.Redirect, e.Status.Detail, subscribed) { Leader = leader ?? "" };
            case StatusCode.InvalidArgument:
            case StatusCode.NotFound:
            case StatusCode.PermissionDenied:
            case StatusCode.Unauthenticated:
                return new Outcome(OutcomeKind.Fatal, $"master {address} refused the subscription ({e.StatusCode}): {e.Status.Detail}", subscribed);
            default:
                return new Outcome(OutcomeKind.Lost, $"master {address}: {e.StatusCode} {e.Status.Detail}".TrimEnd(), subscribed);
        }
    }

    private void MarkSubscribed(Event.Types.Subscribed subscribed, string address)
    {
        TaskCompletionSource<Event.Types.Subscribed> source;
        lock (_lock)
        {
            _frameworkId = subscribed.FrameworkId;
            _current = subscribed;
            source = _subscribed;
        }
        _masters.Connected(address);
        SdkLog.Subscribed(_logger, address, subscribed.FrameworkId, subscribed.StreamId);
        source.TrySetResult(subscribed);
    }

    private void MarkDisconnected(string reason)
    {
        lock (_lock)
        {
            _current = null;
            if (_subscribed.Task.IsCompleted)
            {
                _subscribed = NewSubscribedSource();
            }
        }
        _inbox.Writer.TryWrite(SchedulerNotification.Lost(reason));
    }

    private void Terminate(string reason, bool publishError)
    {
        SdkLog.Stopped(_logger, reason);
        TaskCompletionSource<Event.Types.Subscribed> source;
        lock (_lock)
        {
            TerminationReason = reason;
            _current = null;
            source = _subscribed;
        }
        if (publishError)
        {
            _inbox.Writer.TryWrite(SchedulerNotification.Of(new Event { Error = new Event.Types.Error { Message = reason } }));
        }
        _inbox.Writer.TryComplete();
        source.TrySetException(new SchedulerException(reason));
    }

    private enum OutcomeKind
    {
        Stopped,
        Lost,
        Redirect,
        Fatal,
    }

    private sealed record Outcome(OutcomeKind Kind, string Reason, bool WasSubscribed)
    {
        public string? Leader { get; init; }

        public bool ErrorEventDelivered { get; init; }
    }
}
