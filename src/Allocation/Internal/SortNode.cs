namespace Scheduler.Allocation.Internal;

/// <summary>
/// A node of the hierarchical DRF sorter: a role, a role's own-frameworks group, or a client
/// (one framework in one role). Each node knows the scalar quantities allocated in its subtree
/// and its weighted dominant share; its parent keeps its children sorted by (share, sequence).
/// </summary>
internal abstract class SortNode
{
    protected SortNode(int seq) => Seq = seq;

    public ContainerNode? Parent { get; set; }

    /// <summary>Index in <see cref="Parent"/>'s sorted children.</summary>
    public int Pos { get; set; } = -1;

    /// <summary>Dominant share divided by weight: the sort key.</summary>
    public double Share { get; set; }

    /// <summary>Creation order: the tie-break that keeps sorting deterministic.</summary>
    public int Seq { get; }

    /// <summary>Scalar quantities allocated in the subtree, by resource name index.</summary>
    public long[] Allocated = [];

    /// <summary>Clients in the subtree that may currently receive offers; DFS skips subtrees with none.</summary>
    public int Offerable { get; set; }

    public virtual double Weight => 1.0;

    public bool SortsBefore(SortNode other) => Share < other.Share || (Share == other.Share && Seq < other.Seq);
}

/// <summary>A sorter node with children kept sorted by (share, sequence).</summary>
internal class ContainerNode : SortNode
{
    private SortNode[] _kids = [];

    public ContainerNode(int seq)
        : base(seq)
    {
    }

    public int KidCount { get; private set; }

    public SortNode Kid(int index) => _kids[index];

    public void AddKid(SortNode kid)
    {
        if (KidCount == _kids.Length)
        {
            Array.Resize(ref _kids, Math.Max(4, KidCount * 2));
        }

        kid.Parent = this;
        _kids[KidCount] = kid;
        kid.Pos = KidCount;
        KidCount++;
        Reposition(kid);
    }

    public void RemoveKid(SortNode kid)
    {
        var pos = kid.Pos;
        KidCount--;
        Array.Copy(_kids, pos + 1, _kids, pos, KidCount - pos);
        _kids[KidCount] = null!;
        for (var i = pos; i < KidCount; i++)
        {
            _kids[i].Pos = i;
        }

        kid.Parent = null;
        kid.Pos = -1;
    }

    /// <summary>Moves <paramref name="kid"/> to its place after its share changed.</summary>
    public void Reposition(SortNode kid)
    {
        var pos = kid.Pos;
        var kids = _kids;
        if (pos + 1 < KidCount && kids[pos + 1].SortsBefore(kid))
        {
            var target = pos + 1;
            while (target + 1 < KidCount && kids[target + 1].SortsBefore(kid))
            {
                target++;
            }

            Array.Copy(kids, pos + 1, kids, pos, target - pos);
            kids[target] = kid;
            for (var i = pos; i <= target; i++)
            {
                kids[i].Pos = i;
            }
        }
        else if (pos > 0 && kid.SortsBefore(kids[pos - 1]))
        {
            var target = pos - 1;
            while (target > 0 && kid.SortsBefore(kids[target - 1]))
            {
                target--;
            }

            Array.Copy(kids, target, kids, target + 1, pos - target);
            kids[target] = kid;
            for (var i = target; i <= pos; i++)
            {
                kids[i].Pos = i;
            }
        }
    }

    /// <summary>Sorts all children (after every share changed, e.g. the cluster total did).</summary>
    public void SortKids()
    {
        Array.Sort(_kids, 0, KidCount, KidOrder.Instance);
        for (var i = 0; i < KidCount; i++)
        {
            _kids[i].Pos = i;
        }
    }

    private sealed class KidOrder : IComparer<SortNode>
    {
        public static readonly KidOrder Instance = new();

        public int Compare(SortNode? x, SortNode? y)
        {
            var c = x!.Share.CompareTo(y!.Share);
            return c != 0 ? c : x.Seq.CompareTo(y.Seq);
        }
    }
}

/// <summary>
/// A role in the hierarchy. Its children are its sub-roles plus one group of its own clients
/// (frameworks subscribed to exactly this role), so a role's own frameworks compete with its
/// sub-roles as one unit, as in Mesos' hierarchical sorter.
/// </summary>
internal sealed class RoleNode : ContainerNode
{
    public RoleNode(string name, RoleNode? parentRole, int seq, int groupSeq)
        : base(seq)
    {
        Name = name;
        ParentRole = parentRole;
        Depth = parentRole is null ? 0 : parentRole.Depth + 1;
        Own = new ContainerNode(groupSeq);
        AddKid(Own);
    }

    /// <summary>Full role name ("" for the root).</summary>
    public string Name { get; }

    public RoleNode? ParentRole { get; }

    public int Depth { get; }

    /// <summary>This role's own clients.</summary>
    public ContainerNode Own { get; }

    public double RoleWeight { get; set; } = 1.0;

    public override double Weight => RoleWeight;

    /// <summary>Scalars allocated from unreserved resources in the subtree (quota consumption part).</summary>
    public long[] AllocatedUnreserved = [];

    /// <summary>Scalars reserved (statically or dynamically) for the subtree, allocated or not.</summary>
    public long[] Reserved = [];

    public Sched.V1.QuotaInfo? Quota { get; set; }

    /// <summary>Guaranteed milli-units by name (0 = none).</summary>
    public long[] Guarantee = [];

    /// <summary>Limit in milli-units by name (−1 = none).</summary>
    public long[] Limit = [];

    public bool HasGuarantee { get; set; }

    public bool HasLimit { get; set; }

    /// <summary>Some role on the path root→this has a limit.</summary>
    public bool LimitOnPath { get; set; }

    /// <summary>The top-most role on the path root→this with a guarantee (whose need headroom protects).</summary>
    public RoleNode? GuaranteeRoot { get; set; }

    /// <summary>Consumption below the guarantee in some resource.</summary>
    public bool Unsatisfied { get; set; }

    /// <summary>Roles in the subtree (self included) that are <see cref="Unsatisfied"/>.</summary>
    public int UnsatisfiedInSubtree { get; set; }

    /// <summary>Need counted into the required headroom (only on guarantee roots).</summary>
    public long[] CountedNeed = [];

    public int Clients { get; set; }

    public long Consumption(int name) => Vec.Get(Reserved, name) + Vec.Get(AllocatedUnreserved, name);

    /// <summary>Whether this role is <paramref name="ancestor"/> or below it.</summary>
    public bool IsSelfOrDescendantOf(RoleNode ancestor)
    {
        if (ancestor.Depth > Depth)
        {
            return false;
        }

        var n = this;
        while (n.Depth > ancestor.Depth)
        {
            n = n.ParentRole!;
        }

        return ReferenceEquals(n, ancestor);
    }

    public bool HasSubRoles => KidCount > 1;
}

/// <summary>One framework in one role: what DRF sorts among a role's frameworks.</summary>
internal sealed class ClientNode : SortNode
{
    public ClientNode(FrameworkEntry framework, RoleNode role, int seq)
        : base(seq)
    {
        Framework = framework;
        Role = role;
    }

    public FrameworkEntry Framework { get; }

    public RoleNode Role { get; }

    public bool Suppressed { get; set; }

    /// <summary>The framework no longer has this role; kept while it still holds resources under it.</summary>
    public bool Retired { get; set; }

    /// <summary>The agent visit in which this client last got a grant (one grant per agent per cycle).</summary>
    public long Stamp { get; set; } = -1;

    public bool IsOfferable => Framework.Active && !Suppressed && !Retired;

    /// <summary>Whether this client is counted in its ancestors' <see cref="SortNode.Offerable"/>.</summary>
    public bool CountedOfferable { get; set; }

    /// <summary>Agents on which this client holds resources.</summary>
    public int HoldingCount { get; set; }
}
