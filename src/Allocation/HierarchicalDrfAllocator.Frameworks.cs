using Sched.V1;
using Scheduler.Allocation.Internal;
using Scheduler.Allocation.Sorting;

namespace Scheduler.Allocation;

/// <summary>Frameworks, recovery, operations, suppression, filters, quota and weights.</summary>
public sealed partial class HierarchicalDrfAllocator
{
    public void AddFramework(FrameworkSpec framework, IReadOnlyList<AllocationUse> used)
    {
        ArgumentNullException.ThrowIfNull(framework);
        ArgumentNullException.ThrowIfNull(used);
        if (string.IsNullOrEmpty(framework.FrameworkId))
        {
            throw new ArgumentException("The framework has no id.", nameof(framework));
        }

        ValidateSpec(framework);
        if (_frameworks.TryGetValue(framework.FrameworkId, out var state))
        {
            if (!state.Placeholder)
            {
                throw new ArgumentException($"Framework '{framework.FrameworkId}' is already added; use UpdateFramework to change it.", nameof(framework));
            }

            state.Placeholder = false;
        }
        else
        {
            state = NewFramework(framework);
        }

        state.Active = true;
        ApplySpec(state, framework);
        foreach (var use in used)
        {
            // Agents added before the framework already reported what it uses there.
            if (!_agents.TryGetValue(use.AgentId, out var agent))
            {
                continue;
            }

            var client = GetOrCreateClient(state, use.Role);
            if (agent.FindHolding(client) is not null)
            {
                continue;
            }

            var bag = ToBag(use.Resources, "use of framework '{0}' on agent '{1}'", framework.FrameworkId, use.AgentId);
            DetachFree(agent);
            var taken = agent.Free.TakeAll(bag);
            AttachFree(agent);
            AddToHolding(agent, client, taken);
        }

        _fullPass = true;
    }

    public void UpdateFramework(FrameworkSpec framework)
    {
        ArgumentNullException.ThrowIfNull(framework);
        ValidateSpec(framework);
        var state = GetFramework(framework.FrameworkId);
        ApplySpec(state, framework);
        _fullPass = true;
    }

    public void RemoveFramework(string frameworkId)
    {
        if (!_frameworks.TryGetValue(frameworkId, out var state))
        {
            return;
        }

        // The master recovers resources first; release whatever is still held so nothing leaks.
        var needsScan = state.FilterCount > 0 || state.Clients.Values.Any(c => c.HoldingCount > 0);
        if (needsScan)
        {
            foreach (var agent in _agentList)
            {
                agent.FiltersOrNull?.Remove(state.Index);
                for (var i = agent.Holdings.Count - 1; i >= 0; i--)
                {
                    var holding = agent.Holdings[i];
                    if (ReferenceEquals(holding.Client.Framework, state))
                    {
                        DetachFree(agent);
                        var taken = TakeFromHolding(agent, holding, holding.Resources.Clone());
                        agent.Free.AddAll(taken);
                        AttachFree(agent);
                        Enqueue(agent);
                    }
                }
            }
        }

        foreach (var client in state.Clients.Values.ToList())
        {
            RemoveClient(client);
        }

        _frameworks.Remove(frameworkId);
        _frameworkByIndex[state.Index] = null;
        _freeFrameworkIndices.Push(state.Index);
    }

    public void DeactivateFramework(string frameworkId)
    {
        var state = GetFramework(frameworkId);
        state.Active = false;
        foreach (var client in state.Clients.Values)
        {
            _sorter.UpdateOfferable(client);
        }
    }

    public void ActivateFramework(string frameworkId)
    {
        var state = GetFramework(frameworkId);
        state.Active = true;
        foreach (var client in state.Clients.Values)
        {
            _sorter.UpdateOfferable(client);
        }

        _fullPass = true;
    }

    public void RecoverResources(string frameworkId, string agentId, IReadOnlyList<Resource> resources, TimeSpan? refuseFor)
    {
        ArgumentNullException.ThrowIfNull(resources);

        // Recoveries may race with removals in the master (an offer rescinded for a gone agent):
        // unknown agents or frameworks hold nothing here, so there is nothing to give back.
        if (!_agents.TryGetValue(agentId, out var agent) || !_frameworks.TryGetValue(frameworkId, out var framework))
        {
            return;
        }

        var recovered = false;
        var role = resources.Count > 0 ? resources[0].AllocationRole : "";
        var oneRole = true;
        for (var i = 1; i < resources.Count && oneRole; i++)
        {
            oneRole = resources[i].AllocationRole == role;
        }

        if (oneRole)
        {
            recovered = RecoverForRole(agent, framework, role, resources);
        }
        else
        {
            foreach (var group in resources.GroupBy(r => r.AllocationRole, StringComparer.Ordinal))
            {
                recovered |= RecoverForRole(agent, framework, group.Key, group.ToList());
            }
        }

        if (refuseFor is { } refuse && refuse > TimeSpan.Zero)
        {
            if (refuse > _options.MaxRefuse)
            {
                refuse = _options.MaxRefuse;
            }

            var expiry = _time.GetUtcNow().UtcTicks + refuse.Ticks;
            if (agent.Filters.Set(framework.Index, expiry))
            {
                framework.FilterCount++;
            }

            if (expiry < agent.ScheduledExpiry)
            {
                var superseded = agent.ScheduledExpiry != long.MaxValue;
                agent.ScheduledExpiry = expiry;
                _expiryQueue.Enqueue(agent, expiry);
                if (superseded)
                {
                    NoteStaleExpiry();
                }
            }
        }

        if (recovered)
        {
            Enqueue(agent);
        }
    }

    /// <summary>Gives back what the framework holds of <paramref name="resources"/> under the role ("" = any of its roles).</summary>
    private bool RecoverForRole(AgentEntry agent, FrameworkEntry framework, string role, IReadOnlyList<Resource> resources)
    {
        var bag = ToBag(resources, "recovery from framework '{0}' on agent '{1}'", framework.Id, agent.Id);
        var recovered = false;
        DetachFree(agent);
        for (var i = agent.Holdings.Count - 1; i >= 0 && !bag.IsEmpty; i--)
        {
            var holding = agent.Holdings[i];
            if (!ReferenceEquals(holding.Client.Framework, framework) || (role.Length > 0 && holding.Client.Role.Name != role))
            {
                continue;
            }

            var taken = TakeFromHolding(agent, holding, bag);
            if (!taken.IsEmpty)
            {
                bag.RemoveAll(taken);
                agent.Free.AddAll(taken);
                recovered = true;
            }
        }

        AttachFree(agent);
        return recovered;
    }

    /// <summary>The framework's holdings on the agent for a role ("" = any of its roles).</summary>
    private static List<Holding> HoldingsFor(AgentEntry agent, FrameworkEntry framework, string role)
    {
        var result = new List<Holding>(1);
        foreach (var h in agent.Holdings)
        {
            if (ReferenceEquals(h.Client.Framework, framework) && (role.Length == 0 || h.Client.Role.Name == role))
            {
                result.Add(h);
            }
        }

        return result;
    }

    public void UpdateAllocation(string frameworkId, string agentId, IReadOnlyList<Resource> from, IReadOnlyList<Resource> to)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        var agent = GetAgent(agentId);
        var framework = GetFramework(frameworkId);
        var role = from.Select(r => r.AllocationRole).FirstOrDefault(r => r.Length > 0) ?? "";
        var holdings = HoldingsFor(agent, framework, role);
        var fromBag = ToBag(from, "operation of framework '{0}' on agent '{1}'", frameworkId, agentId);
        var toBag = ToBag(to, "operation of framework '{0}' on agent '{1}'", frameworkId, agentId);
        var holding = holdings.FirstOrDefault(h => h.Resources.Contains(fromBag))
            ?? throw new ArgumentException(
                $"Framework '{frameworkId}' does not hold the resources the operation converts on agent '{agentId}'; " +
                "an operation may only apply to resources offered or allocated to the framework.", nameof(from));
        var client = holding.Client;

        // The operation converts resources in place: both the agent's total and the allocation
        // change the same way, so the free part is untouched.
        DetachFree(agent);
        TakeFromHolding(agent, holding, fromBag);
        AccountTotal(agent.Total, -1);
        agent.Total.RemoveAll(fromBag);
        agent.Total.AddAll(toBag);
        AccountTotal(agent.Total, +1);
        AddToHolding(agent, client, toBag);
        AttachFree(agent);
        agent.HasGpus = HasGpus(agent.Total);
    }

    public void SuppressOffers(string frameworkId, IReadOnlyCollection<string> roles)
    {
        ArgumentNullException.ThrowIfNull(roles);
        var state = GetFramework(frameworkId);
        foreach (var client in state.Clients.Values)
        {
            if (roles.Count == 0 || roles.Contains(client.Role.Name))
            {
                client.Suppressed = true;
                _sorter.UpdateOfferable(client);
            }
        }
    }

    public void ReviveOffers(string frameworkId, IReadOnlyCollection<string> roles)
    {
        ArgumentNullException.ThrowIfNull(roles);
        var state = GetFramework(frameworkId);
        foreach (var client in state.Clients.Values)
        {
            if (roles.Count == 0 || roles.Contains(client.Role.Name))
            {
                client.Suppressed = false;
                _sorter.UpdateOfferable(client);
            }
        }

        ClearFilters(state);
        _fullPass = true;
    }

    private void ClearFilters(FrameworkEntry state)
    {
        if (state.FilterCount == 0)
        {
            return;
        }

        foreach (var agent in _agentList)
        {
            agent.FiltersOrNull?.Remove(state.Index);
        }

        state.FilterCount = 0;
    }

    public string? QuotaProblem(QuotaInfo quota)
    {
        ArgumentNullException.ThrowIfNull(quota);
        var problem = QuotaProblem(quota.Guarantees, quota.Role, "guarantee") ?? QuotaProblem(quota.Limits, quota.Role, "limit");
        if (problem is not null)
        {
            return problem;
        }

        foreach (var g in quota.Guarantees)
        {
            var limit = quota.Limits.FirstOrDefault(l => l.Name == g.Name);
            if (limit is not null && limit.Scalar < g.Scalar)
            {
                return $"Quota of role '{quota.Role}': the {g.Name} guarantee is above its limit; a limit must be at least the guarantee.";
            }
        }

        return null;
    }

    public void UpdateQuota(QuotaInfo quota)
    {
        ArgumentNullException.ThrowIfNull(quota);
        // Everything is checked before anything changes: a refused quota leaves no trace (not even
        // the role it names).
        if (QuotaProblem(quota) is { } problem)
        {
            throw new ArgumentException(problem, nameof(quota));
        }

        var role = GetOrCreateRole(quota.Role);
        if (quota.Guarantees.Count == 0 && quota.Limits.Count == 0)
        {
            _quota.SetQuota(role.Quota, null, [], []);
            _fullPass = true;
            PruneIfIdle(role);
            return;
        }
        else
        {
            var guarantee = ToVector(quota.Guarantees.ToList());
            var limits = ToVector(quota.Limits.ToList());
            var limit = new long[Math.Max(limits.Length, _names.Count)];
            Array.Fill(limit, -1);
            foreach (var r in quota.Limits)
            {
                var k = _names.Find(r.Name);
                limit[k] = limits[k];
            }

            _quota.SetQuota(role.Quota, quota.Clone(), guarantee, limit);
        }

        _fullPass = true;
    }

    private string? QuotaProblem(IEnumerable<Resource> resources, string role, string what)
    {
        var list = resources.ToList();
        var errors = Scheduler.Protocol.Resources.ResourceValidator.Validate(list);
        if (errors.Count > 0)
        {
            return $"Quota {what} of role '{role}' is invalid: {string.Join("; ", errors)}.";
        }

        foreach (var r in list)
        {
            if (r.ValueCase != Resource.ValueOneofCase.Scalar || !_quotaNames.Contains(r.Name) || r.Reservation is not null)
            {
                return $"Quota {what} of role '{role}': '{r.Name}' cannot have a quota; use unreserved scalars among {string.Join(", ", _quotaNames.Order(StringComparer.Ordinal))}.";
            }
        }

        return null;
    }

    public void UpdateWeights(IReadOnlyList<WeightInfo> weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        foreach (var w in weights)
        {
            if (!(w.Weight > 0) || double.IsInfinity(w.Weight))
            {
                throw new ArgumentException($"The weight of role '{w.Role}' must be a positive finite number (got {w.Weight}).", nameof(weights));
            }
        }

        foreach (var w in weights)
        {
            var role = GetOrCreateRole(w.Role);
            _sorter.UpdateWeight(role, w.Weight);
            role.WeightSet = true;
        }

        _fullPass = true;
    }

    private FrameworkEntry GetFramework(string frameworkId) =>
        _frameworks.TryGetValue(frameworkId, out var state)
            ? state
            : throw new ArgumentException($"Unknown framework '{frameworkId}'; add it with AddFramework first.", nameof(frameworkId));

    private FrameworkEntry NewFramework(FrameworkSpec spec)
    {
        var index = _freeFrameworkIndices.Count > 0 ? _freeFrameworkIndices.Pop() : _frameworkByIndex.Count;
        var state = new FrameworkEntry(index, spec);
        if (index == _frameworkByIndex.Count)
        {
            _frameworkByIndex.Add(state);
        }
        else
        {
            _frameworkByIndex[index] = state;
        }

        _frameworks.Add(spec.FrameworkId, state);
        return state;
    }

    /// <summary>A client for a use reported before its framework subscribed: a placeholder framework, inactive.</summary>
    private ClientNode ClientForUse(string frameworkId, string role)
    {
        if (!_frameworks.TryGetValue(frameworkId, out var state))
        {
            state = NewFramework(new FrameworkSpec(frameworkId, [role], [], [], [], []));
            state.Placeholder = true;
            state.Active = false;
        }

        return GetOrCreateClient(state, role);
    }

    private static void ValidateSpec(FrameworkSpec spec)
    {
        if (spec.Roles.Count == 0)
        {
            throw new ArgumentException($"Framework '{spec.FrameworkId}' has no role; give at least one.");
        }

        foreach (var role in spec.Roles)
        {
            if (Scheduler.Protocol.Resources.RoleName.Validate(role) is { } error)
            {
                throw new ArgumentException($"Framework '{spec.FrameworkId}': {error}.");
            }
        }

        foreach (var c in spec.Constraints)
        {
            if (ConstraintEvaluator.Validate(c) is { } error)
            {
                throw new ArgumentException($"Framework '{spec.FrameworkId}': {error}.");
            }
        }
    }

    private void ApplySpec(FrameworkEntry state, FrameworkSpec spec)
    {
        state.Spec = spec;
        state.GpuCapable = spec.Capabilities.Contains(FrameworkCapability.GpuResources);
        state.Constraints = [.. spec.Constraints];
        state.MinAllocatableByRole.Clear();
        state.MinAllocatableAllRoles = null;
        foreach (var group in spec.MinAllocatable.GroupBy(m => m.Role, StringComparer.Ordinal))
        {
            var alternatives = group.Select(m => ToVector(m.Resources)).ToArray();
            if (group.Key.Length == 0)
            {
                state.MinAllocatableAllRoles = alternatives;
            }
            else
            {
                state.MinAllocatableByRole[group.Key] = alternatives;
            }
        }

        foreach (var role in spec.Roles)
        {
            var client = GetOrCreateClient(state, role);
            client.Retired = false;
        }

        foreach (var client in state.Clients.Values.ToList())
        {
            if (!spec.Roles.Contains(client.Role.Name))
            {
                if (client.HoldingCount == 0)
                {
                    RemoveClient(client);
                    continue;
                }

                client.Retired = true;
            }

            client.Suppressed = spec.SuppressedRoles.Contains(client.Role.Name);
            _sorter.UpdateOfferable(client);
        }
    }
}
