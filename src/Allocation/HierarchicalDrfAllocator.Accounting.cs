using Scheduler.Allocation.Internal;
using Scheduler.Protocol.Resources;

namespace Scheduler.Allocation;

/// <summary>Role tree, allocation accounting, shares, quota consumption and headroom.</summary>
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
        var parent = parentName is null ? _root : GetOrCreateRole(parentName);
        node = new RoleNode(name, parent, _seq++, _seq++);
        node.LimitOnPath = parent.LimitOnPath;
        node.GuaranteeRoot = parent.GuaranteeRoot;
        parent.AddKid(node);
        _roles.Add(name, node);
        return node;
    }

    private ClientNode GetOrCreateClient(FrameworkEntry framework, string role)
    {
        if (framework.Clients.TryGetValue(role, out var client))
        {
            return client;
        }

        var roleNode = GetOrCreateRole(role);
        client = new ClientNode(framework, roleNode, _seq++);
        roleNode.Own.AddKid(client);
        framework.Clients.Add(role, client);
        for (var r = roleNode; r is not null; r = r.ParentRole)
        {
            r.Clients++;
        }

        RefreshOfferable(client);
        return client;
    }

    private void RemoveClient(ClientNode client)
    {
        client.Retired = true;
        RefreshOfferable(client);
        client.Role.Own.RemoveKid(client);
        client.Framework.Clients.Remove(client.Role.Name);
        for (var r = client.Role; r is not null; r = r.ParentRole)
        {
            r.Clients--;
        }

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
        while (role is not null && !ReferenceEquals(role, _root) && IsIdle(role))
        {
            var parent = role.ParentRole!;
            parent.RemoveKid(role);
            _roles.Remove(role.Name);
            role = parent;
            pruned = true;
        }

        if (pruned)
        {
            _sharesStale = true;
            _fullPass = true;
        }
    }

    private static bool IsIdle(RoleNode role)
        => role.Clients == 0 && role.Quota is null && !role.WeightSet && role.PoolRefs == 0
           && role.KidCount == 1 && role.Own.KidCount == 0 && role.Offerable == 0
           && role.Allocated.All(v => v == 0) && role.Reserved.All(v => v == 0) && role.AllocatedUnreserved.All(v => v == 0)
           && !role.HasGuarantee && !role.HasLimit && role.UnsatisfiedInSubtree == 0;

    private static void RefreshOfferable(ClientNode client)
    {
        var now = client.IsOfferable;
        if (now == client.CountedOfferable)
        {
            return;
        }

        client.CountedOfferable = now;
        var delta = now ? 1 : -1;
        for (SortNode? n = client; n is not null; n = n.Parent)
        {
            n.Offerable += delta;
        }
    }

    /// <summary>Adds or removes an agent total: cluster totals (shares) and reservations (quota consumption).</summary>
    private void AccountTotal(Bag total, int sign)
    {
        for (var i = 0; i < total.Count; i++)
        {
            ref var c = ref total[i];
            if (!c.IsScalar)
            {
                continue;
            }

            Vec.Add(ref _total, c.Name, sign * c.Milli);
            var pool = _pools[c.Pool];
            for (var r = pool.Role; r is not null; r = r.ParentRole)
            {
                Vec.Add(ref r.Reserved, c.Name, sign * c.Milli);
            }
        }

        for (var i = 0; i < total.Count; i++)
        {
            if (total[i].IsScalar && _pools[total[i].Pool].Role is { } role)
            {
                RefreshQuotaPath(role);
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
                Vec.Add(ref _freeUnreserved, c.Name, sign * c.Milli);
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
    /// Adds <paramref name="sign"/> × the scalars of <paramref name="resources"/> to the client and
    /// every ancestor, then refreshes quota state and (if shares are current) sort positions.
    /// </summary>
    private void ChangeAllocation(ClientNode client, Bag resources, int sign)
    {
        var touchedUnreserved = false;
        for (var i = 0; i < resources.Count; i++)
        {
            ref var c = ref resources[i];
            if (!c.IsScalar)
            {
                continue;
            }

            var delta = sign * c.Milli;
            for (SortNode? n = client; n is not null; n = n.Parent)
            {
                Vec.Add(ref n.Allocated, c.Name, delta);
            }

            if (c.Pool == 0)
            {
                touchedUnreserved = true;
                for (var r = client.Role; r is not null; r = r.ParentRole)
                {
                    Vec.Add(ref r.AllocatedUnreserved, c.Name, delta);
                }
            }
        }

        if (touchedUnreserved)
        {
            RefreshQuotaPath(client.Role);
        }

        if (!_sharesStale)
        {
            for (SortNode n = client; n.Parent is not null; n = n.Parent)
            {
                n.Parent.UpdateShare(n, ComputeShare(n));
            }
        }
    }

    private double ComputeShare(SortNode node)
    {
        var allocated = node.Allocated;
        var total = _total;
        var n = Math.Min(allocated.Length, total.Length);
        var max = 0.0;
        for (var k = 0; k < n; k++)
        {
            if (total[k] > 0 && allocated[k] > 0 && !_excluded[k])
            {
                var share = (double)allocated[k] / total[k];
                if (share > max)
                {
                    max = share;
                }
            }
        }

        return max / node.Weight;
    }

    /// <summary>Unweighted dominant share of a vector (for figures).</summary>
    private double DominantShare(long[] allocated)
    {
        var max = 0.0;
        for (var k = 0; k < Math.Min(allocated.Length, _total.Length); k++)
        {
            if (_total[k] > 0 && !_excluded[k])
            {
                max = Math.Max(max, (double)allocated[k] / _total[k]);
            }
        }

        return max;
    }

    /// <summary>Recomputes every share and re-sorts every node (after totals or weights changed).</summary>
    private void RecomputeAllShares()
    {
        Recompute(_root);
        _sharesStale = false;

        void Recompute(ContainerNode container)
        {
            for (var i = 0; i < container.KidCount; i++)
            {
                var kid = container.Kid(i);
                if (kid is ContainerNode inner)
                {
                    Recompute(inner);
                }

                kid.Share = ComputeShare(kid);
            }

            container.SortKids();
        }
    }

    // ---------------------------------------------------------------- quota

    /// <summary>Refreshes satisfaction and headroom need of the quota roles on the path role→root.</summary>
    private void RefreshQuotaPath(RoleNode role)
    {
        if (role.GuaranteeRoot is null)
        {
            return;
        }

        for (var r = role; r is not null; r = r.ParentRole)
        {
            if (r.HasGuarantee)
            {
                RefreshSatisfaction(r);
                if (ReferenceEquals(r.GuaranteeRoot, r))
                {
                    RefreshNeed(r);
                }
            }
        }
    }

    private void RefreshSatisfaction(RoleNode role)
    {
        var unsatisfied = false;
        for (var k = 0; k < role.Guarantee.Length; k++)
        {
            if (role.Guarantee[k] > role.Consumption(k))
            {
                unsatisfied = true;
                break;
            }
        }

        if (unsatisfied == role.Unsatisfied)
        {
            return;
        }

        role.Unsatisfied = unsatisfied;
        var delta = unsatisfied ? 1 : -1;
        for (var r = role; r is not null; r = r.ParentRole)
        {
            r.UnsatisfiedInSubtree += delta;
        }
    }

    private void RefreshNeed(RoleNode role)
    {
        for (var k = 0; k < role.Guarantee.Length; k++)
        {
            var need = Math.Max(0, role.Guarantee[k] - role.Consumption(k));
            var counted = Vec.Get(role.CountedNeed, k);
            if (need != counted)
            {
                Vec.Add(ref _requiredHeadroom, k, need - counted);
                Vec.Add(ref role.CountedNeed, k, need - counted);
            }
        }
    }

    /// <summary>Rebuilds limit/guarantee paths, satisfaction counts and the required headroom.</summary>
    private void RebuildQuotaState()
    {
        _requiredHeadroom = [];
        Visit(_root, false, null);

        int Visit(RoleNode role, bool limitOnPath, RoleNode? guaranteeRoot)
        {
            role.LimitOnPath = limitOnPath || role.HasLimit;
            role.GuaranteeRoot = guaranteeRoot ?? (role.HasGuarantee ? role : null);
            role.CountedNeed = [];
            role.Unsatisfied = false;
            if (role.HasGuarantee)
            {
                for (var k = 0; k < role.Guarantee.Length; k++)
                {
                    role.Unsatisfied |= role.Guarantee[k] > role.Consumption(k);
                }

                if (ReferenceEquals(role.GuaranteeRoot, role))
                {
                    RefreshNeed(role);
                }
            }

            var count = role.Unsatisfied ? 1 : 0;
            for (var i = 0; i < role.KidCount; i++)
            {
                if (role.Kid(i) is RoleNode sub)
                {
                    count += Visit(sub, role.LimitOnPath, role.GuaranteeRoot);
                }
            }

            role.UnsatisfiedInSubtree = count;
            return count;
        }
    }

    /// <summary>How much more of unreserved scalar <paramref name="name"/> the role may get before some limit on its path.</summary>
    private static long LimitRemaining(RoleNode role, int name)
    {
        var remaining = long.MaxValue;
        for (var r = role; r is not null; r = r.ParentRole)
        {
            if (r.HasLimit && name < r.Limit.Length && r.Limit[name] >= 0)
            {
                remaining = Math.Min(remaining, Math.Max(0, r.Limit[name] - r.Consumption(name)));
            }
        }

        return remaining;
    }

    /// <summary>
    /// How much unreserved <paramref name="name"/> may go to <paramref name="role"/> without leaving
    /// less free than the sum of unsatisfied guarantees: the role's own remaining guarantee plus
    /// whatever is free beyond the headroom everyone's guarantees need.
    /// </summary>
    private long HeadroomAllowance(RoleNode role, int name)
    {
        var required = Vec.Get(_requiredHeadroom, name);
        if (required <= 0)
        {
            return long.MaxValue;
        }

        var available = Math.Max(0, Vec.Get(_freeUnreserved, name) - required);
        var own = role.GuaranteeRoot is { } g ? Vec.Get(g.CountedNeed, name) : 0;
        return own + available;
    }
}
