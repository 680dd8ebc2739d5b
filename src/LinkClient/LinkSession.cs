using System.Collections.Concurrent;
using System.Threading.Channels;
using Grpc.Core;
using Sched.V1;
using Scheduler.Channels;
using Scheduler.Protocol;

namespace Scheduler.LinkClient;

/// <summary>
/// One registered <c>AgentLink.Connect</c> stream, the same for the agent, the simulated agents and
/// the test doubles (each an <see cref="ILinkParticipant"/>): the registration handshake, then
/// three loops until the stream breaks — heartbeats (with the keepalive deadline: a master silent
/// for three pings is left), one writer (messages posted in order, then what the participant has
/// to send), and the reader (pings adopt the announced interval; every message goes to the
/// participant in order). The session ends only after all of them are done.
/// </summary>
public sealed class LinkSession
{
    private readonly AsyncDuplexStreamingCall<AgentMessage, MasterMessage> _call;
    private readonly CancellationTokenSource _stop;
    private readonly ILinkParticipant _participant;
    private readonly LinkSessionOptions _options;
    private readonly ConcurrentQueue<Outgoing> _queue = new();
    // An auto-reset event: a signal set while one is pending is dropped.
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    private long _lastHeard;
    private int _writerDone;

    private LinkSession(string address, MasterMessage.Types.Registered registered, AsyncDuplexStreamingCall<AgentMessage, MasterMessage> call, CancellationTokenSource stop, ILinkParticipant participant, LinkSessionOptions options)
    {
        Address = address;
        Registered = registered;
        Interval = new HeartbeatInterval(TimeSpan.FromSeconds(registered.HeartbeatIntervalSeconds > 0 ? registered.HeartbeatIntervalSeconds : 1));
        _call = call;
        _stop = stop;
        _participant = participant;
        _options = options;
        _lastHeard = options.Time.GetTimestamp();
    }

    /// <summary>The master this session is registered with.</summary>
    public string Address { get; }

    /// <summary>The master's answer to the registration.</summary>
    public MasterMessage.Types.Registered Registered { get; }

    /// <summary>The heartbeat interval: the registration's, then the latest a ping announced.</summary>
    public HeartbeatInterval Interval { get; }

    /// <summary>Completes when the session has ended and all of its loops are done: faulted with
    /// why it ended (the stream's status, a missed keepalive deadline, a refusal), cancelled when
    /// its owner stopped it.</summary>
    public Task Completion { get; private set; } = Task.CompletedTask;

    /// <summary>
    /// Opens a stream on <paramref name="channel"/> to the master at <paramref name="address"/>,
    /// registers <paramref name="participant"/> and starts the session. Throws what
    /// <see cref="LinkLoop.RegisterAsync"/> throws, and a FAILED_PRECONDITION
    /// <see cref="RpcException"/> when the master answers <c>shutdown</c> (after
    /// <see cref="ILinkParticipant.OnShutdownAsync"/>). <paramref name="cancellationToken"/> ends
    /// the session too.
    /// </summary>
    public static async Task<LinkSession> OpenAsync(ChannelBase channel, string address, ILinkParticipant participant, LinkSessionOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(channel);
        ArgumentNullException.ThrowIfNull(participant);
        ArgumentNullException.ThrowIfNull(options);
        var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var call = channel.AsyncDuplexStreamingCall(AgentLinkMethods.Connect, new CallOptions(cancellationToken: stop.Token));
        try
        {
            var first = await LinkLoop.RegisterAsync(call, new AgentMessage { Register = participant.BuildRegister() }, address, options.RegistrationTimeout, options.Time, stop.Token).ConfigureAwait(false);
            if (first.MessageCase == MasterMessage.MessageOneofCase.Shutdown)
            {
                await participant.OnShutdownAsync(first.Shutdown).ConfigureAwait(false);
                throw Refusal(first.Shutdown);
            }
            var session = new LinkSession(address, first.Registered, call, stop, participant, options);
            participant.OnRegistered(first.Registered, session);
            session.Completion = session.RunLoopsAsync();
            return session;
        }
        catch
        {
            call.Dispose();
            stop.Dispose();
            throw;
        }
    }

    /// <summary>
    /// One session of a <see cref="LinkLoop"/>: opens it (see <see cref="OpenAsync"/>), calls
    /// <paramref name="registered"/> once registered, and returns (or throws why) when it has ended.
    /// </summary>
    public static async Task RunAsync(ChannelBase channel, string address, ILinkParticipant participant, LinkSessionOptions options, Action registered, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(registered);
        var session = await OpenAsync(channel, address, participant, options, cancellationToken).ConfigureAwait(false);
        registered();
        await session.Completion.ConfigureAwait(false);
    }

    /// <summary>Queues <paramref name="message"/> for the writer (sent in order of posting, before
    /// <see cref="ILinkParticipant.TakeOutgoing"/>'s messages). A message posted after the session
    /// ended is dropped.</summary>
    public void Post(AgentMessage message) => Enqueue(new Outgoing(message, null));

    /// <summary>Sends <paramref name="message"/> like <see cref="Post"/> and completes when it is
    /// written; throws when the session ends before.</summary>
    public Task SendAsync(AgentMessage message)
    {
        var written = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Enqueue(new Outgoing(message, written));
        return written.Task;
    }

    /// <summary>Tells the writer that <see cref="ILinkParticipant.TakeOutgoing"/> has something.</summary>
    public void Wake() => _wake.Writer.TryWrite(true);

    /// <summary>Ends the session and waits until it has ended (never throws).</summary>
    public async Task StopAsync()
    {
        try
        {
            await _stop.CancelAsync().ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            // Ended meanwhile.
        }
        await Completion.ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
    }

    private void Enqueue(Outgoing outgoing)
    {
        ArgumentNullException.ThrowIfNull(outgoing.Message);
        _queue.Enqueue(outgoing);
        Wake();
        if (Volatile.Read(ref _writerDone) != 0)
        {
            FailQueued();
        }
    }

    private async Task RunLoopsAsync()
    {
        var token = _stop.Token;
        Task[] loops = _participant.RunAlongsideAsync(this, token) is { } alongside
            ? [WriteLoopAsync(token), HeartbeatLoopAsync(token), ReadLoopAsync(token), alongside]
            : [WriteLoopAsync(token), HeartbeatLoopAsync(token), ReadLoopAsync(token)];
        Exception? reason = null;
        try
        {
            var first = await Task.WhenAny(loops).ConfigureAwait(false);
            await _stop.CancelAsync().ConfigureAwait(false);
            // The next registration lists the agent's tasks, and the master takes a task it sent
            // on this stream but does not find in that list for dropped. So the reader must be
            // done before this session ends: on a loaded host it may still be acting on a message
            // it received before the cancel (a launch among them).
            await Task.WhenAll(loops).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
            reason = first.Exception?.InnerException;
            await first.ConfigureAwait(false); // surfaces the reason
        }
        finally
        {
            _call.Dispose();
            _stop.Dispose();
            _participant.OnEnded(this, reason is OperationCanceledException ? null : reason);
        }
    }

    private void FailQueued()
    {
        while (_queue.TryDequeue(out var left))
        {
            left.Written?.TrySetException(new IOException($"the link to master {Address} ended before the message was sent"));
        }
    }

    private async Task WriteLoopAsync(CancellationToken cancellationToken)
    {
        try
        {
            await WriteAllAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // From now on nothing is sent: a reader waiting for a write must not wait for ever.
            Volatile.Write(ref _writerDone, 1);
            FailQueued();
        }
    }

    private async Task WriteAllAsync(CancellationToken cancellationToken)
    {
        var stream = _call.RequestStream;
        while (true)
        {
            await _wake.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            while (true)
            {
                Outgoing next;
                if (_queue.TryDequeue(out var queued))
                {
                    next = queued;
                }
                else if (_participant.TakeOutgoing() is { } taken)
                {
                    next = new Outgoing(taken, null);
                }
                else
                {
                    break;
                }
                try
                {
                    await stream.WriteAsync(next.Message, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    next.Written?.TrySetException(e);
                    throw;
                }
                next.Written?.TrySetResult();
            }
        }
    }

    private async Task HeartbeatLoopAsync(CancellationToken cancellationToken)
    {
        var time = _options.Time;
        var period = Interval.Value;
        ulong sequence = 0;
        var stagger = _options.HeartbeatStagger;
        if (stagger is not null)
        {
            await Task.Delay(period * stagger.NextDouble(), time, cancellationToken).ConfigureAwait(false);
        }
        using var timer = new PeriodicTimer(period, time);
        if (stagger is not null)
        {
            Beat(timer);
        }
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
        {
            Beat(timer);
        }

        void Beat(PeriodicTimer timer)
        {
            // A new interval told in a ping applies from this tick; this tick still came after the
            // old one, so silence is judged against the longer of the two.
            var announced = Interval.Value;
            var allowed = HeartbeatInterval.AllowedSilence(period, announced);
            if (announced != period)
            {
                timer.Period = period = announced;
            }
            if (_options.LeaveSilentMaster && time.GetElapsedTime(Volatile.Read(ref _lastHeard)) > allowed)
            {
                throw new TimeoutException($"master {Address} sent nothing for {allowed.TotalSeconds:0.#} s (3 heartbeats without a ping); trying again");
            }
            Post(new AgentMessage { Heartbeat = new AgentMessage.Types.Heartbeat { Sequence = ++sequence } });
            _participant.OnHeartbeat(sequence, this);
        }
    }

    private async Task ReadLoopAsync(CancellationToken cancellationToken)
    {
        var stream = _call.ResponseStream;
        while (await stream.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            Volatile.Write(ref _lastHeard, _options.Time.GetTimestamp());
            var message = stream.Current;
            switch (message.MessageCase)
            {
                case MasterMessage.MessageOneofCase.Ping when message.Ping.HeartbeatIntervalSeconds > 0:
                    Interval.Value = TimeSpan.FromSeconds(message.Ping.HeartbeatIntervalSeconds);
                    break;
                case MasterMessage.MessageOneofCase.Shutdown:
                    await _participant.OnShutdownAsync(message.Shutdown).ConfigureAwait(false);
                    throw Refusal(message.Shutdown);
            }
            await _participant.HandleAsync(message, this, cancellationToken).ConfigureAwait(false);
        }
        // The master ended the stream: its status says why (a leader hint, a refusal) unless it
        // ended without an error.
        var status = _call.GetStatus();
        if (status.StatusCode == StatusCode.OK)
        {
            throw new IOException($"master {Address} closed the stream");
        }
        throw new RpcException(status, _call.GetTrailers());
    }

    private static RpcException Refusal(MasterMessage.Types.Shutdown shutdown) => new(new Status(StatusCode.FailedPrecondition, shutdown.Message));

    private readonly record struct Outgoing(AgentMessage Message, TaskCompletionSource? Written);
}
