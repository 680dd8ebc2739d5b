using Sched.V1;
using Scheduler.Master.State;

namespace Scheduler.Master.Loop;

/// <summary>
/// Agent liveness, the one part of the master's bookkeeping that runs off the loop. Heartbeats
/// are answered on the stream's reader, not on the loop: under bulk work (tens of thousands of
/// status updates and accepts queued) a heartbeat behind them would reach the loop seconds late,
/// the agent would miss its pings and reconnect, and the master would mark it unreachable — the
/// overload would feed itself. Every arriving message stamps its session
/// (<see cref="AgentLinkSession.Heard"/>) with the master's clock, so the agent timeout measures
/// the agent's silence, not the loop's backlog; the session's two stamps are the only liveness
/// times (one clock, one unit). Timeouts are found on the loop through a deadline heap: one entry
/// per live agent, popped when due and re-armed from the agent's latest message, so a tick costs
/// O(due agents · log n), not O(agents).
/// </summary>
/// <remarks>
/// Thread-safety: <see cref="Ping"/> and <see cref="HeartbeatInterval"/> may be called from any
/// thread (the stream readers answer heartbeats through <see cref="MasterLoop.Receive"/>);
/// everything else only on the loop.
/// </remarks>
public sealed class AgentLiveness(MasterOptions options)
{
    private readonly PriorityQueue<AgentEntry, DateTimeOffset> _deadlines = new();
    private long _heartbeatIntervalTicks;

    /// <summary>When the agent timeout may next mark an agent unreachable (under
    /// <see cref="MasterOptions.AgentRemovalRateLimit"/>).</summary>
    private DateTimeOffset _nextRemoval;

    /// <summary>
    /// The heartbeat interval agents are told (at registration and in every ping): the
    /// configured one, or longer in proportion once the cluster has had so many agents that all of
    /// them heartbeating at the configured interval would exceed
    /// <see cref="MasterOptions.MaxAgentHeartbeatsPerSecond"/>. It only grows while this master
    /// runs, so an agent still heartbeating at an interval told earlier is never late by the
    /// current timeout.
    /// </summary>
    public TimeSpan HeartbeatInterval =>
        Volatile.Read(ref _heartbeatIntervalTicks) is var ticks and > 0 ? TimeSpan.FromTicks(ticks) : options.HeartbeatInterval;

    /// <summary>Silence after which an agent is unreachable: the configured timeout, grown with
    /// <see cref="HeartbeatInterval"/> by the same factor.</summary>
    public TimeSpan AgentTimeout => options.AgentTimeout * (HeartbeatInterval / options.HeartbeatInterval);

    /// <summary>Answers a heartbeat (any thread). The outbox is a multi-writer channel; a closed session drops the ping.</summary>
    public void Ping(AgentLinkSession session, ulong sequence) => session.Outbox.Send(new MasterMessage
    {
        Ping = new MasterMessage.Types.Ping { Sequence = sequence, HeartbeatIntervalSeconds = HeartbeatInterval.TotalSeconds },
    });

    /// <summary>An agent (re-)registered, making <paramref name="agents"/> known: re-derives the
    /// heartbeat interval and puts the agent on the timeout heap (once).</summary>
    public void Registered(AgentEntry agent, int agents)
    {
        if (options.MaxAgentHeartbeatsPerSecond > 0)
        {
            var bounded = TimeSpan.FromMilliseconds(Math.Ceiling(agents * 1000.0 / options.MaxAgentHeartbeatsPerSecond));
            if (bounded > HeartbeatInterval)
            {
                Volatile.Write(ref _heartbeatIntervalTicks, bounded.Ticks);
            }
        }
        Watch(agent);
    }

    /// <summary>
    /// The agents silent for longer than the agent timeout at <paramref name="now"/>, at most as
    /// many as the removal rate allows; <paramref name="watched"/> says whether an agent on the
    /// heap still needs watching (it is active and current). Agents heard from since are re-armed.
    /// </summary>
    public List<(AgentEntry Agent, string Why)> Silent(DateTimeOffset now, Func<AgentEntry, bool> watched)
    {
        var silent = new List<(AgentEntry, string)>();
        while (_deadlines.TryPeek(out var agent, out var deadline) && deadline < now)
        {
            _deadlines.Dequeue();
            agent.InTimeoutHeap = false;
            if (!watched(agent))
            {
                continue; // re-armed when it registers again
            }
            var lastHeard = agent.LastHeardFrom;
            var timeout = AgentTimeout;
            if (now - lastHeard <= timeout)
            {
                Watch(agent);
                continue;
            }
            if (options.AgentRemovalRateLimit is { } rate)
            {
                if (now < _nextRemoval)
                {
                    // Over the removal rate: look again when the next removal is allowed.
                    agent.InTimeoutHeap = true;
                    _deadlines.Enqueue(agent, _nextRemoval);
                    continue;
                }
                _nextRemoval = now + rate.Spacing;
            }
            silent.Add((agent, $"no message for {(now - lastHeard).TotalSeconds:0.#} s (agent timeout {timeout.TotalSeconds:0.#} s)"));
        }
        return silent;
    }

    private void Watch(AgentEntry agent)
    {
        if (agent.InTimeoutHeap)
        {
            return;
        }
        agent.InTimeoutHeap = true;
        _deadlines.Enqueue(agent, agent.LastHeardFrom + AgentTimeout);
    }
}
