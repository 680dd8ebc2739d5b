using Grpc.Core;
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
/// The agent's side of <c>AgentLink.Connect</c> that the agent daemon and the simulated agents
/// share: which master to try next and when (<see cref="MasterSelection"/>), how a session's end
/// is read (a refusal stops the loop; a leader hint is followed; anything else is retried with
/// backoff), and the registration handshake (<see cref="RegisterAsync"/>). What a session does
/// once registered — heartbeats, updates, the master's messages — stays with its owner.
/// </summary>
public sealed class LinkLoop(MasterSelection selection, TimeProvider time)
{
    /// <summary>The master selection (a session calls <see cref="MasterSelection.Connected"/> through the callback it is given).</summary>
    public MasterSelection Selection { get; } = selection;

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
        while (!cancellationToken.IsCancellationRequested)
        {
            var address = Selection.Next();
            TimeSpan delay;
            try
            {
                await session(address, Selection.Connected, cancellationToken).ConfigureAwait(false);
                delay = Selection.Failed(address);
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.FailedPrecondition or StatusCode.PermissionDenied or StatusCode.Unauthenticated or StatusCode.InvalidArgument)
            {
                return new LinkRefusal(address, e.StatusCode, e.Status.Detail);
            }
            catch (RpcException e) when (NotLeader.Is(e, out var leader))
            {
                redirected?.Invoke(address, leader);
                delay = Selection.Redirected(address, leader);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return null;
            }
            catch (Exception e)
            {
                lost?.Invoke(address, e);
                delay = Selection.Failed(address);
            }
            await Task.Delay(delay, time, cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
        }
        return null;
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
