using Sched.V1;
using Scheduler.Allocation.Internal;
using Scheduler.Allocation.Sorting;

namespace Scheduler.Allocation;

/// <summary>Operator figures.</summary>
public sealed partial class HierarchicalDrfAllocator
{
    /// <summary>
    /// Per-role figures (subtree allocation and reservations, scalars only; unweighted dominant
    /// share; frameworks subscribed to exactly that role) and per-framework figures. O(agents) when
    /// filters exist (their expiry is checked).
    /// </summary>
    public AllocatorSnapshot GetSnapshot()
    {
        var now = _time.GetUtcNow().UtcTicks;
        var roles = new List<RoleFigures>(_roles.Count);
        foreach (var role in _roles.Values.OrderBy(r => r.Name, StringComparer.Ordinal))
        {
            var frameworks = new List<string>();
            for (var i = 0; i < role.Own.KidCount; i++)
            {
                frameworks.Add(((ClientNode)role.Own.Kid(i)).Framework.Id);
            }

            frameworks.Sort(StringComparer.Ordinal);
            roles.Add(new RoleFigures(
                role.Name,
                role.RoleWeight,
                role.Quota.Info?.Clone(),
                Vec.ToProto(role.Allocated, _names),
                Vec.ToProto(role.Quota.Reserved, _names),
                _sorter.DominantShare(role.Allocated),
                frameworks));
        }

        var filtersByFramework = new Dictionary<int, int>();
        var activeFilters = 0;
        foreach (var agent in _agentList)
        {
            if (agent.FiltersOrNull is not { Count: > 0 } filters)
            {
                continue;
            }

            foreach (var fw in filters.Frameworks())
            {
                if (filters.IsFiltered(fw, now))
                {
                    activeFilters++;
                    filtersByFramework[fw] = filtersByFramework.GetValueOrDefault(fw) + 1;
                }
            }
        }

        var frameworksFigures = new List<FrameworkFigures>(_frameworks.Count);
        foreach (var fw in _frameworks.Values.OrderBy(f => f.Id, StringComparer.Ordinal))
        {
            var allocated = Array.Empty<long>();
            var suppressed = new List<string>();
            foreach (var client in fw.Clients.Values)
            {
                for (var k = 0; k < client.Allocated.Length; k++)
                {
                    Vec.Add(ref allocated, k, client.Allocated[k]);
                }

                if (client.Suppressed)
                {
                    suppressed.Add(client.Role.Name);
                }
            }

            suppressed.Sort(StringComparer.Ordinal);
            frameworksFigures.Add(new FrameworkFigures(
                fw.Id,
                Vec.ToProto(allocated, _names),
                _sorter.DominantShare(allocated),
                suppressed,
                filtersByFramework.GetValueOrDefault(fw.Index)));
        }

        return new AllocatorSnapshot(roles, frameworksFigures, _cycles, _lastCycleDuration, activeFilters);
    }

    /// <summary>Scalars of the agent not held by any framework (for tests and diagnostics).</summary>
    public IReadOnlyList<Resource> GetFree(string agentId) => GetAgent(agentId).Free.ToProto(_names, _pools, null);

    /// <summary>What a framework holds (offered or allocated) on an agent, all roles.</summary>
    public IReadOnlyList<Resource> GetHeld(string frameworkId, string agentId)
    {
        var agent = GetAgent(agentId);
        var result = new List<Resource>();
        foreach (var h in agent.Holdings)
        {
            if (h.Client.Framework.Id == frameworkId)
            {
                result.AddRange(h.Resources.ToProto(_names, _pools, h.Client.Role.Name));
            }
        }

        return result;
    }
}
