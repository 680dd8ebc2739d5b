using Sched.V1;

namespace Scheduler.LinkClient;

/// <summary>
/// What one participant of <c>AgentLink.Connect</c> (the agent, a simulated agent, a test double)
/// plugs into a <see cref="LinkSession"/>: what it registers with, what it does on registration
/// and with each of the master's messages, and what it has to send besides heartbeats. The
/// session does the rest: handshake, heartbeats and the keepalive deadline, the one writer, the
/// reader, and the orderly end.
/// </summary>
public interface ILinkParticipant
{
    /// <summary>The registration for a new stream (with the agent's id and tasks once it has them).</summary>
    AgentMessage.Types.Register BuildRegister();

    /// <summary>
    /// The master accepted the registration on <paramref name="session"/>. Called before the
    /// session's loops start, so what is sent from here (updates not yet acknowledged, re-sent to
    /// the new master) goes out first.
    /// </summary>
    void OnRegistered(MasterMessage.Types.Registered registered, LinkSession session);

    /// <summary>
    /// One message of the master, in order; the reader waits for it before it reads the next one.
    /// Every message comes here, pings included (the session has already adopted the interval a
    /// ping announces), except <c>shutdown</c>, which goes to <see cref="OnShutdownAsync"/>.
    /// </summary>
    ValueTask HandleAsync(MasterMessage message, LinkSession session, CancellationToken cancellationToken);

    /// <summary>The master marked the agent gone (as the answer to the registration or later). The
    /// session then ends as a refusal (FAILED_PRECONDITION with the master's message), which ends a
    /// <see cref="LinkLoop"/>.</summary>
    Task OnShutdownAsync(MasterMessage.Types.Shutdown shutdown) => Task.CompletedTask;

    /// <summary>Called by the writer whenever it has nothing queued: the participant's next
    /// message to send (a batch of status updates), or null. Ask for a call with
    /// <see cref="LinkSession.Wake"/>.</summary>
    AgentMessage? TakeOutgoing() => null;

    /// <summary>Heartbeat number <paramref name="sequence"/> was queued (to send usage with every n-th).</summary>
    void OnHeartbeat(ulong sequence, LinkSession session)
    {
    }

    /// <summary>Work that lives as long as the session, beside its loops (a re-send clock), or null.
    /// Its failure ends the session; the session waits for it before it ends.</summary>
    Task? RunAlongsideAsync(LinkSession session, CancellationToken cancellationToken) => null;

    /// <summary>The session ended, after its reader, writer and heartbeats (and the work beside
    /// them) are done. <paramref name="reason"/> is why (null: cancelled by its owner).</summary>
    void OnEnded(LinkSession session, Exception? reason)
    {
    }
}
