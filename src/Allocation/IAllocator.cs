using Sched.V1;

namespace Scheduler.Allocation;

/// <summary>
/// Decides which framework is offered which agent's resources. A pure state machine: the master
/// tells it about agents, frameworks and resource changes, and asks it for offers. No I/O, no
/// threads, no clock of its own (time from the injected <see cref="TimeProvider"/>); calls come
/// from one thread (the master loop).
///
/// Resource accounting for each agent: total = free + offered + allocated. "Offered" and
/// "allocated" are both "used by a framework" from the allocator's view: resources leave the
/// free pool when <see cref="Allocate"/> grants them, and come back only through
/// <see cref="RecoverResources"/> (declined/unused offer parts, finished tasks, rescinds).
/// </summary>
public interface IAllocator
{
    /// <summary>Adds an agent with its total resources and what frameworks already use on it
    /// (tasks reported at re-registration).</summary>
    void AddAgent(AgentSpec agent, IReadOnlyList<AllocationUse> used);

    /// <summary>Changes an agent's total (e.g. after RESERVE/UNRESERVE), attributes or draining.</summary>
    void UpdateAgent(AgentSpec agent);

    void RemoveAgent(string agentId);

    /// <summary>Unreachable agents keep their allocation but get no offers until reactivated.</summary>
    void DeactivateAgent(string agentId);

    void ActivateAgent(string agentId);

    /// <summary>Adds a framework, with what it already uses (tasks rebuilt after a failover).</summary>
    void AddFramework(FrameworkSpec framework, IReadOnlyList<AllocationUse> used);

    /// <summary>Roles, capabilities, constraints or suppressed roles changed.</summary>
    void UpdateFramework(FrameworkSpec framework);

    /// <summary>Removes a framework; the master recovers its resources separately first.</summary>
    void RemoveFramework(string frameworkId);

    /// <summary>A disconnected framework keeps its allocation but gets no offers.</summary>
    void DeactivateFramework(string frameworkId);

    void ActivateFramework(string frameworkId);

    /// <summary>
    /// Returns resources a framework held on an agent (offer declined or partly used, task ended,
    /// offer rescinded). With <paramref name="refuseFor"/>, the agent is not offered to that
    /// framework again until the filter expires.
    /// </summary>
    void RecoverResources(string frameworkId, string agentId, IReadOnlyList<Resource> resources, TimeSpan? refuseFor);

    /// <summary>
    /// Replaces part of an allocation after operations (RESERVE turns unreserved resources into
    /// reserved ones): <paramref name="from"/> must be allocated to the framework on the agent.
    /// </summary>
    void UpdateAllocation(string frameworkId, string agentId, IReadOnlyList<Resource> from, IReadOnlyList<Resource> to);

    /// <summary>Stops offers to the framework for these roles (all its roles if empty).</summary>
    void SuppressOffers(string frameworkId, IReadOnlyCollection<string> roles);

    /// <summary>Clears the framework's decline filters and un-suppresses these roles (all if empty).</summary>
    void ReviveOffers(string frameworkId, IReadOnlyCollection<string> roles);

    /// <summary>Null when <see cref="UpdateQuota"/> would accept <paramref name="quota"/>, else
    /// why not (which resource cannot have a quota, a guarantee above its limit …). Changes nothing.</summary>
    string? QuotaProblem(QuotaInfo quota);

    /// <summary>Sets (or, when both lists are empty, removes) a role's quota; triggers a full pass.
    /// Throws <see cref="ArgumentException"/> (and changes nothing) when
    /// <see cref="QuotaProblem"/> names a problem.</summary>
    void UpdateQuota(QuotaInfo quota);

    /// <summary>Sets role weights; triggers a full pass.</summary>
    void UpdateWeights(IReadOnlyList<WeightInfo> weights);

    /// <summary>
    /// Runs an allocation cycle if one is due (the batching interval has passed since the last
    /// cycle and some agent or framework changed) or if <paramref name="force"/>; returns the
    /// grants made (possibly none). The master turns each grant into one offer.
    /// </summary>
    IReadOnlyList<OfferGrant> Allocate(bool force = false);

    /// <summary>When the next cycle should run (for the master loop's timer), or null if idle.</summary>
    DateTimeOffset? NextCycleDue { get; }

    /// <summary>Per-role and per-framework figures for operators and metrics.</summary>
    AllocatorSnapshot GetSnapshot();
}

/// <summary>An agent as the allocator sees it.</summary>
/// <param name="Resources">Total resources, reserved ones carrying their reservation.</param>
public sealed record AgentSpec(string AgentId, string Hostname, IReadOnlyList<Resource> Resources, IReadOnlyList<Sched.V1.Attribute> Attributes, bool Draining = false);

/// <summary>A framework as the allocator sees it.</summary>
public sealed record FrameworkSpec(
    string FrameworkId,
    IReadOnlyList<string> Roles,
    IReadOnlyCollection<FrameworkCapability> Capabilities,
    IReadOnlyList<OfferConstraint> Constraints,
    IReadOnlyList<MinAllocatable> MinAllocatable,
    IReadOnlyCollection<string> SuppressedRoles);

/// <summary>Resources a framework uses on an agent under a role.</summary>
public sealed record AllocationUse(string FrameworkId, string AgentId, string Role, IReadOnlyList<Resource> Resources);

/// <summary>Resources of one agent granted to one framework for one role: one offer.</summary>
public sealed record OfferGrant(string FrameworkId, string Role, string AgentId, IReadOnlyList<Resource> Resources);

/// <summary>Allocator state for operators.</summary>
public sealed record AllocatorSnapshot(
    IReadOnlyList<RoleFigures> Roles,
    IReadOnlyList<FrameworkFigures> Frameworks,
    long Cycles,
    TimeSpan LastCycleDuration,
    int ActiveFilters);

public sealed record RoleFigures(string Role, double Weight, QuotaInfo? Quota, IReadOnlyList<Resource> Allocated, IReadOnlyList<Resource> Reserved, double DominantShare, IReadOnlyList<string> Frameworks);

public sealed record FrameworkFigures(string FrameworkId, IReadOnlyList<Resource> Allocated, double DominantShare, IReadOnlyCollection<string> SuppressedRoles, int ActiveFilters);
