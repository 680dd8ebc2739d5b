using Sched.V1;
using Scheduler.Allocation.Internal;

namespace Scheduler.Allocation.Quotas;

/// <summary>
/// One role's quota account, owned by the <see cref="QuotaLedger"/>: its guarantee and limit,
/// and its consumption (resources reserved for its subtree plus unreserved resources allocated in
/// it), all in milli-units by scalar name. The accounts form their own tree, parallel to the
/// sorter's roles.
/// </summary>
internal sealed class RoleQuota
{
    private readonly List<RoleQuota> _children = [];

    public RoleQuota(RoleQuota? parent)
    {
        Parent = parent;
        if (parent is not null)
        {
            parent._children.Add(this);
            LimitOnPath = parent.LimitOnPath;
            GuaranteeRoot = parent.GuaranteeRoot;
        }
    }

    public RoleQuota? Parent { get; private set; }

    public IReadOnlyList<RoleQuota> Children => _children;

    /// <summary>Scalars allocated from unreserved resources in the subtree.</summary>
    public long[] AllocatedUnreserved = [];

    /// <summary>Scalars reserved (statically or dynamically) for the subtree, allocated or not.</summary>
    public long[] Reserved = [];

    /// <summary>The quota as the operator set it; null for none.</summary>
    public QuotaInfo? Info { get; set; }

    /// <summary>Guaranteed milli-units by name (0 = none).</summary>
    public long[] Guarantee = [];

    /// <summary>Limit in milli-units by name (−1 = none).</summary>
    public long[] Limit = [];

    public bool HasGuarantee { get; set; }

    public bool HasLimit { get; set; }

    /// <summary>Some role on the path root→this has a limit.</summary>
    public bool LimitOnPath { get; set; }

    /// <summary>The top-most account on the path root→this with a guarantee (whose need headroom protects).</summary>
    public RoleQuota? GuaranteeRoot { get; set; }

    /// <summary>Consumption below the guarantee in some resource.</summary>
    public bool Unsatisfied { get; set; }

    /// <summary>Accounts in the subtree (self included) that are <see cref="Unsatisfied"/>.</summary>
    public int UnsatisfiedInSubtree { get; set; }

    /// <summary>Need counted into the required headroom (only on guarantee roots).</summary>
    public long[] CountedNeed = [];

    public long Consumption(int name) => Vec.Get(Reserved, name) + Vec.Get(AllocatedUnreserved, name);

    /// <summary>Nothing is set or counted here: the role may be forgotten.</summary>
    public bool IsIdle =>
        Info is null && !HasGuarantee && !HasLimit && UnsatisfiedInSubtree == 0
        && Reserved.All(v => v == 0) && AllocatedUnreserved.All(v => v == 0);

    /// <summary>Leaves the tree (the role is forgotten).</summary>
    public void Detach()
    {
        Parent?._children.Remove(this);
        Parent = null;
    }
}
