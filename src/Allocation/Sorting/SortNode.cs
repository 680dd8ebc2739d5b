using Scheduler.Allocation.Internal;
using Scheduler.Allocation.Quotas;

namespace Scheduler.Allocation.Sorting;

/// <summary>
/// A node of the hierarchical DRF sorter: a role, a role's own-frameworks group, or a client
/// (one framework in one role). Each node knows the scalar quantities allocated in its subtree
/// and its weighted dominant share; its parent keeps its children sorted by (share, sequence).
/// </summary>
internal abstract class SortNode
{
    protected SortNode(int seq) => Seq = seq;

    public ContainerNode? Parent { get; set; }

    /// <summary>The sort key the sorter gives the node (DRF: dominant share divided by weight).
    /// Change it only through the parent's <see cref="ContainerNode.UpdateShare"/> (or before a
    /// full <see cref="ContainerNode.SortKids"/>).</summary>
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
        var pos = InsertionPoint(kid);
        Array.Copy(_kids, pos, _kids, pos + 1, KidCount - pos);
        _kids[pos] = kid;
        KidCount++;
    }

    public void RemoveKid(SortNode kid)
    {
        var pos = IndexOf(kid);
        KidCount--;
        Array.Copy(_kids, pos + 1, _kids, pos, KidCount - pos);
        _kids[KidCount] = null!;
        kid.Parent = null;
    }

    /// <summary>
    /// Sets a child's share and moves it to its place: binary searches on the sorted (share,
    /// sequence) keys to find it and its new slot, then one block move — O(log n) comparisons.
    /// </summary>
    public void UpdateShare(SortNode kid, double share)
    {
        if (share == kid.Share)
        {
            return;
        }

        var pos = IndexOf(kid);
        kid.Share = share;
        var kids = _kids;
        if (pos + 1 < KidCount && kids[pos + 1].SortsBefore(kid))
        {
            // Moves right: the first slot in (pos, count) whose node sorts after kid, minus one.
            int lo = pos + 1, hi = KidCount;
            while (lo < hi)
            {
                var mid = (lo + hi) >>> 1;
                if (kids[mid].SortsBefore(kid))
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }

            var target = lo - 1;
            Array.Copy(kids, pos + 1, kids, pos, target - pos);
            kids[target] = kid;
        }
        else if (pos > 0 && kid.SortsBefore(kids[pos - 1]))
        {
            // Moves left: the first slot in [0, pos) whose node sorts after kid.
            int lo = 0, hi = pos;
            while (lo < hi)
            {
                var mid = (lo + hi) >>> 1;
                if (kids[mid].SortsBefore(kid))
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }

            Array.Copy(kids, lo, kids, lo + 1, pos - lo);
            kids[lo] = kid;
        }
    }

    /// <summary>Where a node with kid's key would go (first slot whose node does not sort before it).</summary>
    private int InsertionPoint(SortNode kid)
    {
        int lo = 0, hi = KidCount;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_kids[mid].SortsBefore(kid))
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    /// <summary>Finds a child by its current key (the array is sorted by it).</summary>
    private int IndexOf(SortNode kid)
    {
        var pos = InsertionPoint(kid);
        if (pos < KidCount && ReferenceEquals(_kids[pos], kid))
        {
            return pos;
        }

        // Unreachable while the sort invariant holds; kept as a safe fallback.
        return Array.IndexOf(_kids, kid, 0, KidCount);
    }

    /// <summary>Sorts all children (after every share changed, e.g. the cluster total did).</summary>
    public void SortKids()
    {
        Array.Sort(_kids, 0, KidCount, KidOrder.Instance);
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

    /// <summary>This role's quota account (kept by the allocator's <see cref="QuotaLedger"/>; the sorter never reads it).</summary>
    public RoleQuota Quota { get; set; } = null!;

    /// <summary>Clients in the subtree.</summary>
    public int Clients { get; set; }

    /// <summary>An operator set this role's weight (it is kept even when nothing else holds it).</summary>
    public bool WeightSet { get; set; }

    /// <summary>Reservation pools naming this role (a pool is released once no agent has resources in it).</summary>
    public int PoolRefs { get; set; }

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
