using Grpc.Core;
using Polly;
using Polly.Retry;
using Sched.V1;
using Scheduler.Protocol.Masters;

namespace Scheduler.LinkClient;

/// <summary>Why a link loop stopped for good: a master refused the agent (FAILED_PRECONDITION,
/// PERMISSION_DENIED, UNAUTHENTICATED: who it is or a shutdown) or rejected its registration
/// (INVALID_ARGUMENT: what it offers).</summary>
public sealed record LinkRefusal(string Address, StatusCode Code, string Detail)
{
    /// <summary>The registration itself was bad (INVALID_ARGUMENT), not the agent.</summary>
    public bool IsRejection => Code == StatusCode.InvalidArgument;
}

/// <summary>
/// The agent's side of <c>AgentLink.Connect</c> that the agent daemon, the simulated agents and the
/// test doubles share: which master to try next and when (<see cref="MasterSelection"/>), how a
/// session's end is read (a refusal stops the loop; a leader hint is followed; anything else is
/// retried after the selection's delay, by a Polly retry), and the registration handshake
/// (<see cref="RegisterAsync"/>). A registered session is a <see cref="LinkSession"/>.
/// </summary>
public sealed class LinkLoop(MasterSelection selection, TimeProvider time)
{
    /// <summary>The master selection (a session calls <see cref="MasterSelection.Connected"/> through the callback it is given).</summary>
    public MasterSelection Selection { get; } = selection;

    /// <summary>
    /// Runs <see cref="LinkSession"/>s of <paramref name="participant"/> against the selected
    /// master, on the channel <paramref name="channelFor"/> gives for its address, as
    /// <see cref="RunAsync(Func{string, Action, CancellationToken, Task}, Action{string, string?}?, Action{string, Exception}?, CancellationToken)"/> does.
    /// </summary>
    public Task<LinkRefusal?> RunAsync(Func<string, ChannelBase> channelFor, ILinkParticipant participant, LinkSessionOptions options, Action<string, string?>? redirected, Action<string, Exception>? lost, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(channelFor);
        return RunAsync((address, registered, token) => LinkSession.RunAsync(channelFor(address), address, participant, options, registered, token), redirected, lost, cancellationToken);
    }

    /// <summary>
    /// Runs <paramref name="session"/> (address, callback to call once registered, token) against
    /// the selected master, again and again, until <paramref name="cancellationToken"/> fires
    /// (returns null) or a master refuses the agent (returns why). <paramref name="redirected"/>
    /// hears of leader hints (address, leader or null), <paramref name="lost"/> of every other
    /// end of a session (address, reason).
    /// </summary>
    public async Task<LinkRefusal?> RunAsync(Func<string, Action, CancellationToken, Task> session, Action<string, string?>? redirected, Action<string, Exception>? lost, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        LinkRefusal? refusal = null;
        var retry = new ResiliencePipelineBuilder<TimeSpan?> { TimeProvider = time }.AddRetry(new RetryStrategyOptions<TimeSpan?>
        {
            MaxRetryAttempts = int.MaxValue,
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Result is not null),
            DelayGenerator = args => ValueTask.FromResult(args.Outcome.Result),
        }).Build();
        try
        {
            await retry.ExecuteAsync(AttemptAsync, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Cancelled while waiting to retry.
        }
        return refusal;

        // One session; returns the delay before the next one (null: stop).
        async ValueTask<TimeSpan?> AttemptAsync(CancellationToken token)
        {
            var address = Selection.Next();
            try
            {
                await session(address, Selection.Connected, token).ConfigureAwait(false);
                return Selection.Failed(address);
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.FailedPrecondition or StatusCode.PermissionDenied or StatusCode.Unauthenticated or StatusCode.InvalidArgument)
            {
                refusal = new LinkRefusal(address, e.StatusCode, e.Status.Detail);
                return null;
            }
            catch (RpcException e) when (NotLeader.Is(e, out var leader))
            {
                redirected?.Invoke(address, leader);
                return Selection.Redirected(address, leader);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return null;
            }
            catch (Exception e)
            {
                lost?.Invoke(address, e);
                return Selection.Failed(address);
            }
        }
    }

    /// <summary>
    /// Sends <paramref name="register"/> on a new <paramref name="call"/> and returns the master's
    /// first message: <c>registered</c>, or <c>shutdown</c> (the agent was marked gone; the caller
    /// acts on it and ends the loop). For agents and test doubles alike, with or without a loop.
    /// Throws the call's status when the master ends the stream
    /// first, a <see cref="TimeoutException"/> when it does not answer within
    /// <paramref name="timeout"/> (null: no limit), and an <see cref="InvalidOperationException"/>
    /// for any other first message.
    /// </summary>
    public static async Task<MasterMessage> RegisterAsync(AsyncDuplexStreamingCall<AgentMessage, MasterMessage> call, AgentMessage register, string address, TimeSpan? timeout, TimeProvider time, CancellationToken session)
    {
        ArgumentNullException.ThrowIfNull(call);
        ArgumentNullException.ThrowIfNull(register);
        ArgumentNullException.ThrowIfNull(time);
        using var deadline = timeout is { } t ? new CancellationTokenSource(t, time) : new CancellationTokenSource();
        using var registering = CancellationTokenSource.CreateLinkedTokenSource(session, deadline.Token);
        try
        {
            await call.RequestStream.WriteAsync(register, registering.Token).ConfigureAwait(false);
            if (!await call.ResponseStream.MoveNext(registering.Token).ConfigureAwait(false))
            {
                throw new RpcException(call.GetStatus(), call.GetTrailers());
            }
        }
        catch (Exception e) when (deadline.IsCancellationRequested && !session.IsCancellationRequested && e is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled })
        {
            throw new TimeoutException($"master {address} did not answer the registration within {timeout!.Value.TotalSeconds:0.#} s; trying the next master");
        }
        var first = call.ResponseStream.Current;
        if (first.MessageCase is not (MasterMessage.MessageOneofCase.Registered or MasterMessage.MessageOneofCase.Shutdown))
        {
            throw new InvalidOperationException($"master {address} sent {first.MessageCase} before registered");
        }
        return first;
    }
}
