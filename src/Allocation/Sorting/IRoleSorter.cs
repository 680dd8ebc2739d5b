using Scheduler.Allocation.Internal;

namespace Scheduler.Allocation.Sorting;

/// <summary>
/// The order in which the allocator offers, in the spirit of Mesos' <c>Sorter</c>: a tree of roles
/// whose leaves are clients (one framework in one role), the scalar quantities allocated to each
/// client and the cluster total, and a sort. Each level of the tree is ordered on its own (a
/// role's own clients form one group that competes with its sub-roles). The sorter knows nothing
/// of quota, reservations, filters or agents: the allocator's <see cref="ISortWalk"/> decides,
/// while the sorter walks its order, which subtrees to enter and which client to take.
///
/// Contract (tested by <c>RoleSorterContractTests</c> against every implementation):
/// <list type="bullet">
/// <item>roles are added parent first and removed leaf first; clients are added to and removed from an existing role;</item>
/// <item><see cref="Allocated"/>/<see cref="Unallocated"/> add/subtract the scalars of a bag to the client and each ancestor, exactly;</item>
/// <item><see cref="First"/> visits only clients that are offerable (<see cref="ClientNode.IsOfferable"/>
/// as last reported by <see cref="UpdateOfferable"/>), each at most once, and every offerable
/// client of an entered subtree before giving up;</item>
/// <item>after <see cref="Sort"/>, the order reflects every change made since.</item>
/// </list>
/// Not thread-safe; one caller (the allocator).
/// </summary>
internal interface IRoleSorter
{
    /// <summary>The root role ("").</summary>
    RoleNode Root { get; }

    /// <summary>Adds role <paramref name="name"/> under <paramref name="parent"/>.</summary>
    RoleNode AddRole(string name, RoleNode parent);

    /// <summary>Removes a role that has no sub-role and no client.</summary>
    void RemoveRole(RoleNode role);

    /// <summary>Adds <paramref name="framework"/> as a client of <paramref name="role"/>.</summary>
    ClientNode AddClient(FrameworkEntry framework, RoleNode role);

    /// <summary>Removes a client (it no longer counts as offerable).</summary>
    void RemoveClient(ClientNode client);

    /// <summary>Activation: re-reads <see cref="ClientNode.IsOfferable"/> (framework active, role not suppressed).</summary>
    void UpdateOfferable(ClientNode client);

    /// <summary>Sets a role's weight (shares are divided by it).</summary>
    void UpdateWeight(RoleNode role, double weight);

    /// <summary>Adds <paramref name="delta"/> milli-units of scalar <paramref name="name"/> to the cluster total.</summary>
    void AddTotal(int name, long delta);

    /// <summary>Which scalar names are left out of fairness (indexed by name; shorter = not excluded).</summary>
    void ExcludeFromFairness(bool[] excluded);

    /// <summary>Records the scalars of <paramref name="resources"/> as allocated to <paramref name="client"/>.</summary>
    void Allocated(ClientNode client, Bag resources);

    /// <summary>Records the scalars of <paramref name="resources"/> as no longer allocated to <paramref name="client"/>.</summary>
    void Unallocated(ClientNode client, Bag resources);

    /// <summary>Brings the order up to date (called before each allocation cycle).</summary>
    void Sort();

    /// <summary>Walks the order depth first; returns the first client <paramref name="walk"/> takes, or null.</summary>
    ClientNode? First(ISortWalk walk);

    /// <summary>Unweighted dominant share of an allocation vector against the cluster total (for figures).</summary>
    double DominantShare(long[] allocated);
}

/// <summary>The allocator's side of a walk over the sorter's order.</summary>
internal interface ISortWalk
{
    /// <summary>
    /// Whether to walk into <paramref name="role"/>. <paramref name="scope"/> is what the parent's
    /// <see cref="Enter"/> returned in <paramref name="innerScope"/> (false at the root): the
    /// allocator carries "a guarantee on the path is unsatisfied" in it.
    /// </summary>
    bool Enter(RoleNode role, bool scope, out bool innerScope);

    /// <summary>Whether to take <paramref name="client"/> (an offerable one) and stop the walk.</summary>
    bool Take(ClientNode client, bool scope);
}
