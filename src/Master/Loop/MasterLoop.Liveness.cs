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
            session.Outbox.Send(new MasterMessage { Ping = new MasterMessage.Types.Ping { Sequence = message.Heartbeat.Sequence } });
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
        _agentDeadlines.Enqueue(agent, agent.LastHeardFrom + agent.Timeout);
    }

    /// <summary>
    /// The heartbeat interval and timeout for an agent registering now: the configured ones, or
    /// longer in proportion when the cluster is large enough that every agent heartbeating at the
    /// configured interval would exceed <c>MasterOptions.MaxAgentHeartbeatsPerSecond</c>.
    /// </summary>
    private (TimeSpan Interval, TimeSpan Timeout) AgentLiveness()
    {
        var interval = _options.HeartbeatInterval;
        if (_options.MaxAgentHeartbeatsPerSecond > 0)
        {
            var bounded = TimeSpan.FromMilliseconds(Math.Ceiling(_agents.Count * 1000.0 / _options.MaxAgentHeartbeatsPerSecond));
            if (bounded > interval)
            {
                interval = bounded;
            }
        }
        return (interval, _options.AgentTimeout * (interval / _options.HeartbeatInterval));
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
            if (now - lastHeard > agent.Timeout)
            {
                MarkUnreachable(agent, $"no message for {(now - lastHeard).TotalSeconds:0.#} s (agent timeout {agent.Timeout.TotalSeconds:0.#} s)");
                continue;
            }
            WatchTimeout(agent);
        }
    }
}
