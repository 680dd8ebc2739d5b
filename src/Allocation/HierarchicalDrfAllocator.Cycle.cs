using Scheduler.Allocation.Internal;
using Scheduler.Allocation.Quotas;
using Scheduler.Allocation.Sorting;

namespace Scheduler.Allocation;

/// <summary>The allocation cycle: candidate agents, DRF pick, grant building, filter expiry.</summary>
public sealed partial class HierarchicalDrfAllocator
{
    public DateTimeOffset? NextCycleDue
    {
        get
        {
            long? due = null;
            if (_fullPass || _candidates.Count > 0)
            {
                due = EarliestCycleTicks();
            }
            else if (_expiryQueue.TryPeek(out _, out var expiry))
            {
                due = Math.Max(expiry, EarliestCycleTicks());
            }

            return due is { } ticks ? new DateTimeOffset(ticks, TimeSpan.Zero) : null;
        }
    }

    private long EarliestCycleTicks() =>
        _lastCycleTicks == long.MinValue ? _time.GetUtcNow().UtcTicks : _lastCycleTicks + _options.AllocationInterval.Ticks;

    public IReadOnlyList<OfferGrant> Allocate(bool force = false)
    {
        var now = _time.GetUtcNow().UtcTicks;
        if (!force && _lastCycleTicks != long.MinValue && now < _lastCycleTicks + _options.AllocationInterval.Ticks)
        {
            return [];
        }

        ExpireFilters(now);
        ReleaseUnusedPools();
        if (!_fullPass && _candidates.Count == 0)
        {
            return [];
        }

        var started = _time.GetTimestamp();
        List<AgentEntry> agents;
        if (_fullPass)
        {
            agents = new List<AgentEntry>(_agentList);
            foreach (var a in _candidates)
            {
                a.Queued = false;
            }
        }
        else
        {
            agents = new List<AgentEntry>(_candidates);
            foreach (var a in agents)
            {
                a.Queued = false;
            }
        }

        _candidates.Clear();
        _fullPass = false;

        // Visit agents in a seeded random order (Fisher–Yates), as Mesos shuffles them.
        for (var i = agents.Count - 1; i > 0; i--)
        {
            var j = _random.Next(i + 1);
            (agents[i], agents[j]) = (agents[j], agents[i]);
        }

        _sorter.Sort();

        var grants = new List<OfferGrant>();
        foreach (var agent in agents)
        {
            if (agent.Offerable && !agent.Free.IsEmpty)
            {
                AllocateAgent(agent, now, grants);
            }
        }

        _lastCycleTicks = now;
        _cycles++;
        _lastCycleDuration = _time.GetElapsedTime(started);
        return grants;
    }

    /// <summary>Offers the agent's free part to the lowest-share eligible clients, one grant each.</summary>
    private void AllocateAgent(AgentEntry agent, long now, List<OfferGrant> grants)
    {
        _stamp++;
        while (!agent.Free.IsEmpty)
        {
            ClientNode? client = null;
            _walk.Agent = agent;
            _walk.Now = now;
            if (_quota.AnyUnsatisfied)
            {
                _walk.Stage1 = true;
                client = _sorter.First(_walk);
            }

            _walk.Stage1 = false;
            client ??= _sorter.First(_walk);
            if (client is null)
            {
                return;
            }

            var grant = new OfferGrant(client.Framework.Id, client.Role.Name, agent.Id, _scratch.ToProto(_names, _pools, client.Role.Name));
            DetachFree(agent);
            agent.Free.RemoveAll(_scratch);
            AttachFree(agent);
            AddToHolding(agent, client, _scratch);
            client.Stamp = _stamp;
            grants.Add(grant);
        }
    }

    /// <summary>
    /// The allocator's side of the sorter's walk: the first client in sort order that is eligible
    /// for the agent and can be granted something (the grant is left in the scratch bag). Stage 1
    /// only considers roles with an unsatisfied guarantee on their path.
    /// </summary>
    private sealed class GrantWalk(HierarchicalDrfAllocator owner) : ISortWalk
    {
        public AgentEntry Agent { get; set; } = null!;

        public long Now { get; set; }

        public bool Stage1 { get; set; }

        /// <param name="scope">A guarantee on the path to <paramref name="role"/> is unsatisfied.</param>
        public bool Enter(RoleNode role, bool scope, out bool innerScope)
        {
            // Stage 2 needs no quota state: skip the load of the role's account (a cache miss per
            // role visited on large trees).
            if (!Stage1)
            {
                innerScope = false;
                return true;
            }

            var quota = role.Quota;
            innerScope = scope || quota.Unsatisfied;
            return innerScope || quota.UnsatisfiedInSubtree > 0;
        }

        public bool Take(ClientNode client, bool scope) =>
            (!Stage1 || scope) && owner.Eligible(client, Agent, Now) && owner.BuildGrant(client, Agent);
    }

    private bool Eligible(ClientNode client, AgentEntry agent, long now)
    {
        if (client.Stamp == _stamp)
        {
            return false;
        }

        var framework = client.Framework;
        if (agent.HasGpus && !framework.GpuCapable)
        {
            return false;
        }

        if (agent.IsFiltered(framework.Index, now))
        {
            return false;
        }

        return framework.Constraints.Count == 0 || ConstraintEvaluator.Satisfies(agent, framework.Constraints, client.Role.Name);
    }

    /// <summary>
    /// Fills the scratch bag with what the client may take from the agent: unreserved resources
    /// and those reserved for its role or an ancestor; unreserved quota scalars cut to the
    /// role's limits and to the headroom others' guarantees need. False if that is below the
    /// minimum allocatable.
    /// </summary>
    private bool BuildGrant(ClientNode client, AgentEntry agent)
    {
        var scratch = _scratch;
        scratch.Clear();
        var role = client.Role;
        var free = agent.Free;
        for (var i = 0; i < free.Count; i++)
        {
            ref var cell = ref free[i];
            var pool = _pools[cell.Pool];
            if (pool.Role is { } reservedFor && !role.IsSelfOrDescendantOf(reservedFor))
            {
                continue;
            }

            if (!cell.IsScalar)
            {
                scratch.Add(cell);
                continue;
            }

            var amount = cell.Milli;
            if (pool.IsUnreserved && _isQuotaName[cell.Name])
            {
                if (role.Quota.LimitOnPath && QuotaLedger.LimitRemaining(role.Quota, cell.Name) is var remaining && remaining < amount)
                {
                    amount = remaining;
                    _limitCut.Add(agent);
                }

                if (_quota.RequiredHeadroom(cell.Name) > 0)
                {
                    amount = Math.Min(amount, _quota.HeadroomAllowance(role.Quota, cell.Name));
                }
            }

            if (amount > 0)
            {
                var part = cell;
                part.Milli = amount;
                scratch.Add(part);
            }
        }

        return !scratch.IsEmpty && MeetsMinimum(client);
    }

    private bool MeetsMinimum(ClientNode client)
    {
        var framework = client.Framework;
        var alternatives =
            framework.MinAllocatableByRole.TryGetValue(client.Role.Name, out var byRole) ? byRole
            : framework.MinAllocatableAllRoles ?? _globalMinimum;
        if (alternatives.Length == 0)
        {
            return true;
        }

        var vector = _scratchVector;
        if (vector.Length < _names.Count)
        {
            vector = _scratchVector = new long[_names.Count];
        }

        Array.Clear(vector);
        for (var i = 0; i < _scratch.Count; i++)
        {
            ref var c = ref _scratch[i];
            if (c.IsScalar)
            {
                vector[c.Name] += c.Milli;
            }
        }

        foreach (var alternative in alternatives)
        {
            var ok = true;
            for (var k = 0; k < alternative.Length && ok; k++)
            {
                ok = alternative[k] <= (k < vector.Length ? vector[k] : 0);
            }

            if (ok)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Drops expired decline filters and queues their agents (they may now go to those frameworks).</summary>
    private void ExpireFilters(long now)
    {
        while (_expiryQueue.TryPeek(out var agent, out var expiry) && expiry <= now)
        {
            _expiryQueue.Dequeue();
            if (agent.Removed || expiry != agent.ScheduledExpiry)
            {
                _staleExpiries--;
                continue; // stale entry: superseded by an earlier one or the agent is gone
            }

            agent.ScheduledExpiry = long.MaxValue;
            var removed = 0;
            agent.Filters.RemoveExpired(now, fw =>
            {
                removed++;
                if (_frameworkByIndex[fw] is { } f)
                {
                    f.FilterCount--;
                }
            });
            var next = agent.Filters.EarliestExpiry;
            if (next != long.MaxValue)
            {
                agent.ScheduledExpiry = next;
                _expiryQueue.Enqueue(agent, next);
            }

            if (removed > 0 && !agent.Free.IsEmpty)
            {
                Enqueue(agent);
            }
        }
    }

    /// <summary>Entries of the filter-expiry queue, live and stale (superseded by an earlier expiry,
    /// or of a removed agent). Stale ones are dropped when they come due or, once they make up a
    /// quarter of the queue, all at once: a removed agent is not kept alive by a long filter.</summary>
    public int ScheduledFilterExpiries => _expiryQueue.Count;

    /// <summary>Counts one more stale entry in the expiry queue, and compacts the queue when stale
    /// entries are a quarter of it. Without this, every reconnect storm would keep a full copy of
    /// the removed agents' state until their (possibly hour-long) filters came due.</summary>
    private void NoteStaleExpiry()
    {
        _staleExpiries++;
        if (_staleExpiries < 64 || _staleExpiries * 4 < _expiryQueue.Count)
        {
            return;
        }

        var live = new List<(AgentEntry Agent, long Expiry)>(_expiryQueue.Count - _staleExpiries);
        foreach (var (agent, expiry) in _expiryQueue.UnorderedItems)
        {
            if (!agent.Removed && expiry == agent.ScheduledExpiry)
            {
                live.Add((agent, expiry));
            }
        }

        _expiryQueue.Clear();
        _expiryQueue.EnqueueRange(live);
        _staleExpiries = 0;
    }
}
