using Sched.V1;

namespace Scheduler.Master.State;

/// <summary>
/// The agents a leading master knows, by id; the ids an operator marked gone (refused for good);
/// and, while a term recovers from the registry, the admitted agents it still expects to
/// re-register. What an agent runs is the <see cref="TaskBook"/>'s; what it is offered, the
/// <see cref="OfferBook"/>'s; when it was last heard from, the <c>AgentLiveness</c>'s.
/// Owned by the master loop (not thread-safe).
/// </summary>
/// <remarks>
/// Invariants: an id is never both known and gone; an expected id is always a known agent
/// (marking it gone or removing it stops expecting it).
/// </remarks>
public sealed class AgentBook
{
    private readonly Dictionary<string, AgentEntry> _agents = new(StringComparer.Ordinal);
    private readonly HashSet<string> _gone = new(StringComparer.Ordinal);
    private readonly HashSet<string> _expected = new(StringComparer.Ordinal);

    /// <summary>How many agents are known (any status but gone).</summary>
    public int Count => _agents.Count;

    /// <summary>Every known agent.</summary>
    public IEnumerable<AgentEntry> All => _agents.Values;

    /// <summary>Admitted agents of the registry that have not re-registered in this term yet.</summary>
    public int ExpectedCount => _expected.Count;

    /// <summary>How many agents were expected when the term started (see <see cref="Expect"/>).</summary>
    public int RecoveredCount { get; private set; }

    public bool TryGet(string agentId, out AgentEntry agent) => _agents.TryGetValue(agentId, out agent!);

    /// <summary>The agent of <paramref name="agentId"/>, or null.</summary>
    public AgentEntry? Find(string agentId) => _agents.GetValueOrDefault(agentId);

    public bool Contains(string agentId) => _agents.ContainsKey(agentId);

    /// <summary>Whether <paramref name="agent"/> is the entry the book holds for its id (not a
    /// forgotten or replaced one).</summary>
    public bool IsCurrent(AgentEntry agent) => _agents.TryGetValue(agent.Id, out var current) && current == agent;

    /// <summary>Starts tracking <paramref name="agent"/>. Precondition: its id is neither known nor gone.</summary>
    public void Add(AgentEntry agent)
    {
        ArgumentNullException.ThrowIfNull(agent);
        if (_gone.Contains(agent.Id))
        {
            throw new InvalidOperationException($"agent {agent.Id} was marked gone and cannot be added again");
        }
        _agents.Add(agent.Id, agent);
    }

    /// <summary>Forgets an agent (it may register again as an agent the master does not know).</summary>
    public bool Remove(string agentId)
    {
        _expected.Remove(agentId);
        return _agents.Remove(agentId);
    }

    /// <summary>Forgets an agent and refuses its id for good.</summary>
    public void MarkGone(string agentId)
    {
        Remove(agentId);
        _gone.Add(agentId);
    }

    /// <summary>Whether an agent id was marked gone (this term or, from the registry, before).</summary>
    public bool IsGone(string agentId) => _gone.Contains(agentId);

    /// <summary>Expects a known agent loaded from the registry as admitted to re-register in this term.</summary>
    public void Expect(string agentId)
    {
        if (!_agents.ContainsKey(agentId))
        {
            throw new InvalidOperationException($"agent {agentId} is not known; add it before expecting it");
        }
        if (_expected.Add(agentId))
        {
            RecoveredCount++;
        }
    }

    /// <summary>Whether the agent is still expected to re-register after the failover.</summary>
    public bool IsExpected(string agentId) => _expected.Contains(agentId);

    /// <summary>The agent re-registered: it is no longer expected.</summary>
    public void Arrived(string agentId) => _expected.Remove(agentId);

    /// <summary>Ends recovery: returns the expected agents that have no link (they did not come
    /// back) and expects no agent any more.</summary>
    public List<AgentEntry> EndRecovery()
    {
        var missing = _expected.Select(id => _agents.GetValueOrDefault(id)).OfType<AgentEntry>().Where(a => a.Link is null).ToList();
        _expected.Clear();
        return missing;
    }

    /// <summary>Whether some agent may hold tasks the master does not know: one still expected
    /// after a failover, or one unreachable. O(agents).</summary>
    public bool SomeAgentUnheard() => _expected.Count > 0 || _agents.Values.Any(a => a.Status == AgentStatus.AgentUnreachable);

    /// <summary>Unreachable agents without a link that are not expected back from a failover,
    /// longest lost first: the candidates for garbage collection.</summary>
    public List<AgentEntry> LostLongestFirst() => _agents.Values
        .Where(a => a.Status == AgentStatus.AgentUnreachable && a.Link is null && a.UnreachableSince is not null && !_expected.Contains(a.Id))
        .OrderBy(a => a.UnreachableSince)
        .ToList();

    /// <summary>The sum of the totals of the active and draining agents (what quota guarantees are checked against).</summary>
    public ResourceBag ActiveTotal()
    {
        var cluster = new ResourceBag();
        foreach (var agent in _agents.Values.Where(a => a.Status is AgentStatus.AgentActive or AgentStatus.AgentDraining))
        {
            cluster.Add(agent.Resources.Total);
        }
        return cluster;
    }
}
