using Scheduler.Allocation.Internal;
using Scheduler.Allocation.Quotas;
using Scheduler.Allocation.Sorting;
using Scheduler.Protocol.Resources;

namespace Scheduler.Allocation;

/// <summary>
/// Roles and clients, and the accounting of every change twice: in the sorter (the order) and in
/// the quota ledger (guarantees, limits, headroom).
/// </summary>
public sealed partial class HierarchicalDrfAllocator
{
    private RoleNode GetOrCreateRole(string name)
    {
        if (_roles.TryGetValue(name, out var node))
        {
            return node;
        }

        if (RoleName.Validate(name) is { } error)
        {
            throw new ArgumentException($"Invalid role: {error}.", nameof(name));
        }

        var parentName = RoleName.Parent(name);
        var parent = parentName is null ? _sorter.Root : GetOrCreateRole(parentName);
        node = _sorter.AddRole(name, parent);
        node.Quota = new RoleQuota(parent.Quota);
        _roles.Add(name, node);
        return node;
    }

    private ClientNode GetOrCreateClient(FrameworkEntry framework, string role)
    {
        if (framework.Clients.TryGetValue(role, out var client))
        {
            return client;
        }

        client = _sorter.AddClient(framework, GetOrCreateRole(role));
        framework.Clients.Add(role, client);
        return client;
    }

    private void RemoveClient(ClientNode client)
    {
        _sorter.RemoveClient(client);
        client.Framework.Clients.Remove(client.Role.Name);
        PruneIfIdle(client.Role);
    }

    /// <summary>
    /// Forgets <paramref name="role"/>, then its parent and so on up, while nothing holds it: no
    /// framework (client), quota, operator-set weight, reservation, allocation or sub-role. Roles
    /// come and go with frameworks; without this the role table only grows.
    /// </summary>
    private void PruneIfIdle(RoleNode? role)
    {
        var pruned = false;
        while (role is not null && !ReferenceEquals(role, _sorter.Root) && IsIdle(role))
        {
            var parent = role.ParentRole!;
            _sorter.RemoveRole(role);
            role.Quota.Detach();
            _roles.Remove(role.Name);
            role = parent;
            pruned = true;
        }

        if (pruned)
        {
            _fullPass = true;
        }
    }

    private static bool IsIdle(RoleNode role)
        => role.Clients == 0 && !role.WeightSet && role.PoolRefs == 0
           && role.KidCount == 1 && role.Own.KidCount == 0 && role.Offerable == 0
           && role.Allocated.All(v => v == 0) && role.Quota.IsIdle;

    /// <summary>
    /// Releases the candidate pools (<see cref="PoolTable.Candidates"/>) that no agent total and no
    /// holding has resources in, then prunes the roles only they held: a reservation removed from
    /// every agent leaves neither its pool nor its role behind. The holdings are scanned only when
    /// some candidate has no total cell left, which is rare (a reservation gone, a role's last
    /// reserved agent removed, an operation naming a reservation no agent has).
    /// </summary>
    private void ReleaseUnusedPools()
    {
        if (_pools.Candidates.Count == 0)
        {
            return;
        }

        var unused = _pools.Candidates.Concat(_heldWithoutTotal).Where(p => p.TotalRefs == 0).ToHashSet();
        _pools.Candidates.Clear();
        _heldWithoutTotal.Clear();
        if (unused.Count == 0)
        {
            return;
        }

        foreach (var agent in _agentList)
        {
            foreach (var holding in agent.Holdings)
            {
                for (var i = 0; i < holding.Count && unused.Count > 0; i++)
                {
                    if (unused.Remove(_pools[holding[i].Pool]))
                    {
                        // Held without a total (a total shrank under an allocation): looked at
                        // again with the next candidates.
                        _heldWithoutTotal.Add(_pools[holding[i].Pool]);
                    }
                }
            }
        }

        foreach (var pool in unused)
        {
            PruneIfIdle(_pools.Release(pool));
        }
    }

    /// <summary>Adds or removes an agent total: cluster totals (shares), reservations (quota
    /// consumption) and the pools' counts of total cells.</summary>
    private void AccountTotal(Bag total, int sign)
    {
        for (var i = 0; i < total.Count; i++)
        {
            ref var c = ref total[i];
            var pool = _pools[c.Pool];
            pool.TotalRefs += sign;
            if (pool.TotalRefs == 0 && pool.Index != 0)
            {
                _pools.Candidates.Add(pool);
            }

            if (!c.IsScalar)
            {
                continue;
            }

            _sorter.AddTotal(c.Name, sign * c.Milli);
            if (_pools[c.Pool].Role is { } role)
            {
                _quota.AddReserved(role.Quota, c.Name, sign * c.Milli);
            }
        }

        for (var i = 0; i < total.Count; i++)
        {
            if (total[i].IsScalar && _pools[total[i].Pool].Role is { } role)
            {
                _quota.RefreshPath(role.Quota);
            }
        }
    }

    private void DetachFree(AgentEntry state)
    {
        if (state.CountsForHeadroom)
        {
            AccumulateUnreservedFree(state, -1);
        }
    }

    private void AttachFree(AgentEntry state)
    {
        if (state.CountsForHeadroom)
        {
            AccumulateUnreservedFree(state, +1);
        }
    }

    private void AccumulateUnreservedFree(AgentEntry state, int sign)
    {
        var free = state.Free;
        for (var i = 0; i < free.Count; i++)
        {
            ref var c = ref free[i];
            if (c.Pool == 0 && c.IsScalar)
            {
                _quota.AddFreeUnreserved(c.Name, sign * c.Milli);
            }
        }
    }

    /// <summary>Records resources (already taken out of the agent's free part) as held by the client.</summary>
    private void AddToHolding(AgentEntry state, ClientNode client, Bag resources)
    {
        if (resources.IsEmpty)
        {
            return;
        }

        var holding = state.FindHolding(client);
        if (holding is null)
        {
            holding = new Holding(client);
            state.Holdings.Add(holding);
            client.HoldingCount++;
        }

        holding.Resources.AddAll(resources);
        ChangeAllocation(client, resources, +1);
    }

    /// <summary>Removes resources from a client's holding on the agent and returns what was really held.</summary>
    private Bag TakeFromHolding(AgentEntry state, Holding holding, Bag resources)
    {
        var taken = holding.Resources.TakeAll(resources);
        if (holding.Resources.IsEmpty)
        {
            state.Holdings.Remove(holding);
            holding.Client.HoldingCount--;
        }

        ChangeAllocation(holding.Client, taken, -1);
        return taken;
    }

    /// <summary>
    /// Adds <paramref name="sign"/> × the scalars of <paramref name="resources"/> to the client's
    /// allocation in the sorter and, for unreserved ones, to its role's quota consumption.
    /// </summary>
    private void ChangeAllocation(ClientNode client, Bag resources, int sign)
    {
        if (sign > 0)
        {
            _sorter.Allocated(client, resources);
        }
        else
        {
            _sorter.Unallocated(client, resources);
        }

        var touchedUnreserved = false;
        for (var i = 0; i < resources.Count; i++)
        {
            ref var c = ref resources[i];
            if (c.IsScalar && c.Pool == 0)
            {
                touchedUnreserved = true;
                _quota.AddAllocatedUnreserved(client.Role.Quota, c.Name, sign * c.Milli);
            }
        }

        if (touchedUnreserved)
        {
            _quota.RefreshPath(client.Role.Quota);
            if (sign < 0 && _limitCut.Count > 0)
            {
                // Room under a limit came back (maybe on an agent that can no longer be offered):
                // the agents the limit held back from may now be offered.
                foreach (var agent in _limitCut)
                {
                    Enqueue(agent);
                }

                _limitCut.Clear();
            }
        }
    }
}
