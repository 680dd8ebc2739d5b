using Sched.V1;
using Scheduler.Master.State;

namespace Scheduler.Master.Loop;

/// <summary>
/// Agent liveness. Heartbeats are answered on the stream's reader, not on the loop: under bulk
/// work (tens of thousands of status updates and accepts queued) a heartbeat behind them would
/// reach the loop seconds late, the agent would miss its pings and reconnect, and the master
/// would mark it unreachable — the overload would feed itself. Every arriving message stamps the
/// session (<see cref="AgentLinkSession.Heard"/>), so the agent timeout measures the agent's
/// silence, not the loop's backlog. Timeouts are found through a deadline heap: one entry per
/// live agent, popped when due and re-armed from the agent's latest message, so a tick costs
/// O(due agents · log n), not O(agents).
/// </summary>
public sealed partial class MasterLoop
{
    private readonly PriorityQueue<AgentEntry, DateTimeOffset> _agentDeadlines = new();
    private long _heartbeatIntervalTicks;

    /// <summary>When the agent timeout may next mark an agent unreachable (under
    /// <see cref="MasterOptions.AgentRemovalRateLimit"/>).</summary>
    private DateTimeOffset _nextAgentRemoval;

    /// <summary>
    /// Entry point for every message read from an AgentLink stream (any thread). Heartbeats of a
    /// registered stream are answered here at once; everything else is queued to the loop in
    /// arrival order.
    /// </summary>
    public void Receive(AgentLinkSession session, AgentMessage message)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(message);
        var heartbeat = message.MessageCase == AgentMessage.MessageOneofCase.Heartbeat;
        session.Heard(Now, heartbeat);
        if (heartbeat && session.AgentId is not null)
        {
            // The outbox is a multi-writer channel; a closed session drops the ping.
            session.Outbox.Send(new MasterMessage
            {
                Ping = new MasterMessage.Types.Ping { Sequence = message.Heartbeat.Sequence, HeartbeatIntervalSeconds = CurrentHeartbeatInterval.TotalSeconds },
            });
            return;
        }
        Post(l => l.OnAgentMessage(session, message));
    }

    /// <summary>Puts an active agent on the timeout heap (once).</summary>
    private void WatchTimeout(AgentEntry agent)
    {
        if (agent.InTimeoutHeap)
        {
            return;
        }
        agent.InTimeoutHeap = true;
        _agentDeadlines.Enqueue(agent, agent.LastHeardFrom + CurrentAgentTimeout);
    }

    /// <summary>
    /// The heartbeat interval agents are told (at registration and in every ping; readable from
    /// any thread): the configured one, or longer in proportion once the cluster has had so many
    /// agents that all of them heartbeating at the configured interval would exceed
    /// <c>MasterOptions.MaxAgentHeartbeatsPerSecond</c>. It only grows while this master runs, so
    /// an agent still heartbeating at an interval told earlier is never late by the current timeout.
    /// </summary>
    public TimeSpan CurrentHeartbeatInterval =>
        Volatile.Read(ref _heartbeatIntervalTicks) is var ticks and > 0 ? TimeSpan.FromTicks(ticks) : _options.HeartbeatInterval;

    /// <summary>Silence after which an agent is unreachable: the configured timeout, grown with
    /// <see cref="CurrentHeartbeatInterval"/> by the same factor.</summary>
    private TimeSpan CurrentAgentTimeout => _options.AgentTimeout * (CurrentHeartbeatInterval / _options.HeartbeatInterval);

    /// <summary>Re-derives <see cref="CurrentHeartbeatInterval"/> from the number of agents (on registration).</summary>
    private void UpdateHeartbeatInterval()
    {
        if (_options.MaxAgentHeartbeatsPerSecond <= 0)
        {
            return;
        }
        var bounded = TimeSpan.FromMilliseconds(Math.Ceiling(_agents.Count * 1000.0 / _options.MaxAgentHeartbeatsPerSecond));
        if (bounded > CurrentHeartbeatInterval)
        {
            Volatile.Write(ref _heartbeatIntervalTicks, bounded.Ticks);
        }
    }

    /// <summary>Marks unreachable every active agent silent for longer than the agent timeout.</summary>
    private void CheckAgentTimeouts(DateTimeOffset now)
    {
        while (_agentDeadlines.TryPeek(out var agent, out var deadline) && deadline < now)
        {
            _agentDeadlines.Dequeue();
            agent.InTimeoutHeap = false;
            if (agent.Status is not (AgentStatus.AgentActive or AgentStatus.AgentDraining) || !agent.InAllocator
                || !_agents.TryGetValue(agent.Id, out var current) || current != agent)
            {
                continue; // re-armed when it registers again
            }
            var lastHeard = agent.LastHeardFrom;
            var timeout = CurrentAgentTimeout;
            if (now - lastHeard > timeout)
            {
                if (_options.AgentRemovalRateLimit is { } rate)
                {
                    if (now < _nextAgentRemoval)
                    {
                        // Over the removal rate: look again when the next removal is allowed.
                        agent.InTimeoutHeap = true;
                        _agentDeadlines.Enqueue(agent, _nextAgentRemoval);
                        continue;
                    }
                    _nextAgentRemoval = now + rate.Spacing;
                }
                MarkUnreachable(agent, $"no message for {(now - lastHeard).TotalSeconds:0.#} s (agent timeout {timeout.TotalSeconds:0.#} s)");
                continue;
            }
            WatchTimeout(agent);
        }
    }
}
