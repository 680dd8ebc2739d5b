using Sched.V1;
using Scheduler.Protocol.Resources;
using Scheduler.Protocol.Tasks;

namespace Scheduler.Master.Tests.Direct;

/// <summary>
/// What must hold of a master's state after every step, checked on what the master itself
/// reports (<c>GetState</c>, <c>GetQuota</c>) with exact resource arithmetic
/// (<see cref="ResourceSet"/>): no resource offered or allocated twice; offered + allocated
/// within the total on every agent; every live task accounted to exactly one agent and one
/// framework; the allocator's books equal to the master's; quota limits never exceeded;
/// guarantees met whenever the cluster can meet them.
/// </summary>
public static class MasterInvariants
{
    public static async Task<string?> CheckAsync(DirectMaster master, bool afterAllocation)
    {
        var (state, quotas) = await master.On(l => (l.GetState(), l.GetQuota()));
        return Check(state, quotas.Quotas, afterAllocation);
    }

    /// <summary>The first broken invariant, or null. <paramref name="afterAllocation"/>: the state
    /// follows a full allocation pass, so guarantees must be met where the cluster can meet them.</summary>
    public static string? Check(GetStateResponse state, IEnumerable<QuotaInfo> quotas, bool afterAllocation)
    {
        var agents = state.Agents.ToDictionary(a => a.Info.Id, StringComparer.Ordinal);
        var frameworks = state.Frameworks.ToDictionary(f => f.Info.Id, StringComparer.Ordinal);
        var seen = new HashSet<(string, string)>();
        var usedOnAgent = new Dictionary<string, ResourceSet>(StringComparer.Ordinal);
        var usedByRole = new Dictionary<string, ResourceSet>(StringComparer.Ordinal);
        foreach (var task in state.Tasks)
        {
            if (!seen.Add((task.FrameworkId, task.TaskId)))
            {
                return $"task {task.TaskId} of framework {task.FrameworkId} is live twice";
            }
            if (!agents.ContainsKey(task.AgentId))
            {
                return $"live task {task.TaskId} is on agent {task.AgentId}, which the master does not know";
            }
            if (!frameworks.ContainsKey(task.FrameworkId))
            {
                return $"live task {task.TaskId} belongs to framework {task.FrameworkId}, which the master does not know";
            }
            if (TaskLifecycle.IsTerminal(task.State))
            {
                return $"task {task.TaskId} is listed live in terminal state {task.State}";
            }
            var resources = Plain(task.Resources);
            usedOnAgent[task.AgentId] = usedOnAgent.GetValueOrDefault(task.AgentId, ResourceSet.Empty) + resources;
            usedByRole[task.Role] = usedByRole.GetValueOrDefault(task.Role, ResourceSet.Empty) + resources;
        }

        foreach (var agent in state.Agents)
        {
            var (total, offered, allocated, available) = (Plain(agent.Total), Plain(agent.Offered), Plain(agent.Allocated), Plain(agent.Available));
            var name = $"agent {agent.Info.Hostname} ({agent.Info.Id}, {agent.Status})";
            if (!total.Contains(offered + allocated))
            {
                return $"{name}: offered {Show(offered)} + allocated {Show(allocated)} exceed its total {Show(total)}";
            }
            if (!(offered + allocated + available).Equals(total))
            {
                return $"{name}: offered {Show(offered)} + allocated {Show(allocated)} + available {Show(available)} is not its total {Show(total)}: something was granted twice or never given back";
            }
            var charged = usedOnAgent.GetValueOrDefault(agent.Info.Id, ResourceSet.Empty);
            if (!allocated.Equals(charged))
            {
                return $"{name}: its live tasks add up to {Show(charged)} but it counts {Show(allocated)} allocated";
            }
        }

        var roles = state.Roles.ToDictionary(r => r.Name, StringComparer.Ordinal);
        foreach (var role in state.Roles)
        {
            var held = Plain(role.Offered) + usedByRole.GetValueOrDefault(role.Name, ResourceSet.Empty);
            if (!Plain(role.Allocated).Equals(held))
            {
                return $"role {role.Name}: the allocator counts {Show(Plain(role.Allocated))} allocated but its offers and live tasks hold {Show(held)}";
            }
        }

        // The master never hands out more than a limit: offers and launches stay within it. Tasks
        // alone may be above it only when the master learnt of them after the limit was set (an
        // agent re-registering after a failover); then the role must get no offers.
        var quotaList = quotas.ToList();
        foreach (var quota in quotaList)
        {
            var offered = roles.TryGetValue(quota.Role, out var r) ? Plain(r.Offered) : ResourceSet.Empty;
            var running = usedByRole.GetValueOrDefault(quota.Role, ResourceSet.Empty);
            foreach (var limit in quota.Limits)
            {
                var (tasks, offers) = (Scalar(running, limit.Name), Scalar(offered, limit.Name));
                if (tasks + offers > limit.Scalar + 1e-9 && (tasks <= limit.Scalar + 1e-9 || offers > 0))
                {
                    return $"role {quota.Role} holds {tasks} {limit.Name} in tasks and {offers} in offers, over its quota limit of {limit.Scalar}";
                }
            }
        }

        if (afterAllocation)
        {
            return GuaranteeProblem(state, quotaList, roles);
        }
        return null;
    }

    /// <summary>After a full allocation pass: a role with a connected framework that holds less
    /// than its guarantee while the free resources of active agents could cover every role's
    /// missing guarantee at once was passed over.</summary>
    private static string? GuaranteeProblem(GetStateResponse state, List<QuotaInfo> quotas, Dictionary<string, RoleState> roles)
    {
        var connectedRoles = state.Frameworks.Where(f => f.Connected).SelectMany(f => f.Info.Roles).ToHashSet(StringComparer.Ordinal);
        foreach (var name in quotas.SelectMany(q => q.Guarantees).Select(g => g.Name).Distinct(StringComparer.Ordinal))
        {
            var free = state.Agents
                .Where(a => a.Status is AgentStatus.AgentActive)
                .Sum(a => Scalar(Plain(a.Available), name));
            var missing = quotas.ToDictionary(q => q.Role, q =>
            {
                var guarantee = q.Guarantees.Where(g => g.Name == name).Sum(g => g.Scalar);
                var has = roles.TryGetValue(q.Role, out var r) ? Scalar(Plain(r.Allocated), name) : 0;
                return Math.Max(0, guarantee - has);
            }, StringComparer.Ordinal);
            var totalMissing = missing.Values.Sum();
            foreach (var (role, short_) in missing)
            {
                if (short_ > 1e-9 && connectedRoles.Contains(role) && free + 1e-9 >= totalMissing)
                {
                    return $"role {role} is {short_} {name} short of its guarantee while {free} {name} are free on active agents (all roles together miss {totalMissing})";
                }
            }
        }
        return null;
    }

    private static string Show(ResourceSet set) => set.Count == 0 ? "nothing" : set.ToString();

    private static ResourceSet Plain(IEnumerable<Resource> resources) => ResourceSet.From(resources).WithAllocationRole(null);

    private static double Scalar(ResourceSet set, string name) => set.Where(r => r.Name == name).Sum(r => r.Scalar);
}
