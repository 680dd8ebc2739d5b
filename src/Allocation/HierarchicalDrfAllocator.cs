using Sched.V1;
using Scheduler.Allocation.Internal;
using Scheduler.Allocation.Quotas;
using Scheduler.Allocation.Sorting;
using Scheduler.Protocol.Resources;

namespace Scheduler.Allocation;

/// <summary>
/// Hierarchical Dominant Resource Fairness allocator (Mesos-style): DRF across roles at each level
/// of the role tree (weighted), then across the frameworks of a role; quota guarantees served
/// first within a global headroom, quota limits never exceeded; static and dynamic reservations
/// offered only to their role's subtree; decline filters, suppression, minimum allocatable
/// resources, attribute constraints, GPU gating, draining and deactivated agents.
///
/// Incremental: agents whose free resources changed are queued and only they are visited by the
/// next cycle; a full pass over all agents happens only after policy changes (weights, quota, a
/// framework added, activated, updated or revived). Each visited agent, in a seeded random order,
/// goes to the lowest-share eligible client — one grant per (framework, role, agent) with all that
/// client may take — and then, if something is left (quota chopping), to the next one.
///
/// Not thread-safe: one caller (the master loop). No I/O, no wall clock.
/// </summary>
public sealed partial class HierarchicalDrfAllocator : IAllocator
{
    private readonly AllocatorOptions _options;
    private readonly TimeProvider _time;
    private readonly Random _random;
    private readonly NameTable _names = new();
    private readonly PoolTable _pools = new();

    /// <summary>Pools no agent total has but a holding still had at the last release.</summary>
    private readonly HashSet<Pool> _heldWithoutTotal = [];

    /// <summary>Pools interned now, the unreserved one included (for tests of the table's growth).</summary>
    internal int PoolCount => _pools.Count;
    private readonly IRoleSorter _sorter;
    private readonly QuotaLedger _quota = new();
    private readonly GrantWalk _walk;
    private readonly Dictionary<string, RoleNode> _roles = new(StringComparer.Ordinal);
    private readonly Dictionary<string, AgentEntry> _agents = new(StringComparer.Ordinal);
    private readonly List<AgentEntry> _agentList = [];
    private readonly Dictionary<string, FrameworkEntry> _frameworks = new(StringComparer.Ordinal);
    private readonly List<FrameworkEntry?> _frameworkByIndex = [];
    private readonly Stack<int> _freeFrameworkIndices = new();
    private readonly List<AgentEntry> _candidates = [];

    /// <summary>Agents whose free quota scalars a role's limit held back when they were last
    /// visited: they are queued again when some role's consumption falls, or they would stay
    /// unoffered while the agent that freed the room is gone (unreachable, removed).</summary>
    private readonly HashSet<AgentEntry> _limitCut = [];
    private readonly PriorityQueue<AgentEntry, long> _expiryQueue = new();
    private int _staleExpiries;
    private readonly long[][] _globalMinimum;
    private readonly HashSet<string> _excludedNames;
    private readonly HashSet<string> _quotaNames;
    private readonly Bag _scratch = new(8);
    private long[] _scratchVector = [];
    private bool[] _excluded = [];
    private bool[] _isQuotaName = [];
    private bool _fullPass;
    private long _stamp;
    private long _lastCycleTicks = long.MinValue;
    private long _cycles;
    private TimeSpan _lastCycleDuration;

    /// <param name="options">Policy; validated here.</param>
    /// <param name="time">The only source of time (cycle batching, filter expiry, latency).</param>
    /// <param name="random">Seeded: decides the order in which agents are visited.</param>
    public HierarchicalDrfAllocator(AllocatorOptions options, TimeProvider time, Random random)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(random);
        options.Validate();
        _options = options;
        _time = time;
        _random = random;
        _excludedNames = new HashSet<string>(options.FairnessExcludedResources, StringComparer.Ordinal);
        _quotaNames = new HashSet<string>(options.QuotaResources, StringComparer.Ordinal);
        _sorter = options.RoleSorter == RoleSorterKind.Random ? new RandomSorter(random) : new DrfSorter();
        _sorter.Root.Quota = _quota.Root;
        _walk = new GrantWalk(this);
        _globalMinimum = [.. options.MinAllocatable.Select(ToVector)];
    }

    /// <summary>Number of agents known.</summary>
    public int AgentCount => _agents.Count;

    /// <summary>Number of frameworks known (including ones known only from agents' tasks).</summary>
    public int FrameworkCount => _frameworks.Count;

    // ---------------------------------------------------------------- agents

    public void AddAgent(AgentSpec agent, IReadOnlyList<AllocationUse> used)
    {
        ArgumentNullException.ThrowIfNull(agent);
        ArgumentNullException.ThrowIfNull(used);
        if (string.IsNullOrEmpty(agent.AgentId))
        {
            throw new ArgumentException("The agent has no id.", nameof(agent));
        }

        if (_agents.ContainsKey(agent.AgentId))
        {
            throw new ArgumentException($"Agent '{agent.AgentId}' is already added; use UpdateAgent to change it.", nameof(agent));
        }

        var total = ToBag(agent.Resources, "agent '{0}'{1}", agent.AgentId, "");
        var state = new AgentEntry(agent, total) { HasGpus = HasGpus(total) };
        AccountTotal(state.Total, +1);
        foreach (var use in used)
        {
            if (use.AgentId.Length > 0 && use.AgentId != agent.AgentId)
            {
                throw new ArgumentException($"A use of framework '{use.FrameworkId}' names agent '{use.AgentId}', not '{agent.AgentId}'.", nameof(used));
            }

            var client = ClientForUse(use.FrameworkId, use.Role);
            var bag = ToBag(use.Resources, "use of framework '{0}' on agent '{1}'", use.FrameworkId, agent.AgentId);
            var taken = state.Free.TakeAll(bag);
            AddToHolding(state, client, taken);
        }

        _agents.Add(agent.AgentId, state);
        state.ListIndex = _agentList.Count;
        _agentList.Add(state);
        AttachFree(state);
        Enqueue(state);
    }

    public void UpdateAgent(AgentSpec agent)
    {
        ArgumentNullException.ThrowIfNull(agent);
        var state = GetAgent(agent.AgentId);
        var sameTotal = state.Spec.Resources.SequenceEqual(agent.Resources);
        var total = sameTotal ? state.Total : ToBag(agent.Resources, "agent '{0}'{1}", agent.AgentId, "");
        DetachFree(state);
        state.Spec = agent;
        if (!sameTotal)
        {
            AccountTotal(state.Total, -1);
            state.Total = total;
            AccountTotal(state.Total, +1);
            state.HasGpus = HasGpus(total);
            RecomputeFree(state);
        }

        AttachFree(state);
        Enqueue(state);
    }

    public void RemoveAgent(string agentId)
    {
        if (!_agents.TryGetValue(agentId, out var state))
        {
            return;
        }

        DetachFree(state);
        _limitCut.Remove(state);
        foreach (var holding in state.Holdings)
        {
            ChangeAllocation(holding.Client, holding.Resources, -1);
            holding.Client.HoldingCount--;
        }

        state.Holdings.Clear();
        AccountTotal(state.Total, -1);
        if (state.FiltersOrNull is { } filters)
        {
            foreach (var fw in filters.Frameworks())
            {
                if (_frameworkByIndex[fw] is { } f)
                {
                    f.FilterCount--;
                }
            }

            filters.Clear();
        }
        state.Removed = true;
        if (state.ScheduledExpiry != long.MaxValue)
        {
            state.ScheduledExpiry = long.MaxValue;
            NoteStaleExpiry();
        }
        _agents.Remove(agentId);
        var last = _agentList[^1];
        _agentList[state.ListIndex] = last;
        last.ListIndex = state.ListIndex;
        _agentList.RemoveAt(_agentList.Count - 1);
    }

    public void DeactivateAgent(string agentId)
    {
        var state = GetAgent(agentId);
        DetachFree(state);
        state.Active = false;
        AttachFree(state);
    }

    public void ActivateAgent(string agentId)
    {
        var state = GetAgent(agentId);
        DetachFree(state);
        state.Active = true;
        AttachFree(state);
        Enqueue(state);
    }

    private AgentEntry GetAgent(string agentId) =>
        _agents.TryGetValue(agentId, out var state)
            ? state
            : throw new ArgumentException($"Unknown agent '{agentId}'; add it with AddAgent first.", nameof(agentId));

    private void Enqueue(AgentEntry state)
    {
        if (!state.Queued && !state.Removed)
        {
            state.Queued = true;
            _candidates.Add(state);
        }
    }

    private bool HasGpus(Bag total)
    {
        var gpus = _names.Find("gpus");
        return gpus >= 0 && total.HasScalar(gpus);
    }

    /// <summary>Free = total − everything held, saturating (after the total shrank or changed shape).</summary>
    private static void RecomputeFree(AgentEntry state)
    {
        var free = state.Total.Clone();
        foreach (var holding in state.Holdings)
        {
            free.RemoveAll(holding.Resources);
        }

        state.Free = free;
    }

    /// <param name="what">Composite format naming the resources' origin for error messages (formatted only on error).</param>
    private Bag ToBag(IEnumerable<Resource> resources, [System.Diagnostics.CodeAnalysis.StringSyntax("CompositeFormat")] string what, string arg0, string arg1)
    {
        Bag bag;
        try
        {
            bag = Bag.FromProto(resources, _names, _pools, GetOrCreateRole);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"Invalid resources for {string.Format(System.Globalization.CultureInfo.InvariantCulture, what, arg0, arg1)}: {e.Message}", e);
        }

        SyncNameFlags();
        return bag;
    }

    private void SyncNameFlags()
    {
        var n = _names.Count;
        if (_excluded.Length >= n)
        {
            return;
        }

        var excluded = new bool[n];
        var quota = new bool[n];
        for (var i = 0; i < n; i++)
        {
            excluded[i] = _excludedNames.Contains(_names[i]);
            quota[i] = _names.Kind(i) == CellKind.Scalar && _quotaNames.Contains(_names[i]);
        }

        _excluded = excluded;
        _sorter.ExcludeFromFairness(excluded);
        _isQuotaName = quota;
    }

    private long[] ToVector(IEnumerable<Resource> scalars)
    {
        var v = Array.Empty<long>();
        foreach (var r in scalars)
        {
            if (r.ValueCase != Resource.ValueOneofCase.Scalar)
            {
                throw new ArgumentException($"'{r.Name}' must be a scalar here.");
            }

            Vec.Add(ref v, _names.Intern(r.Name, CellKind.Scalar), FixedScalar.ToFixed(r.Scalar));
        }

        SyncNameFlags();
        return v;
    }
}
