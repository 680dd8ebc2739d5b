using Scheduler.Allocation.Internal;

namespace Scheduler.Allocation.Sorting;

/// <summary>
/// Hierarchical Dominant Resource Fairness: at each level of the role tree, children in order of
/// weighted dominant share (max over resources of allocated/total, divided by the weight; ties
/// by creation order). Incremental: an allocation change moves the nodes of one root-to-client
/// path (two binary searches and one block move each); totals or weights changing mark every
/// share stale, recomputed and re-sorted once at the next <see cref="Sort"/>.
/// </summary>
internal sealed class DrfSorter : RoleTreeSorter
{
    protected override void OnAllocationChanged(ClientNode client)
    {
        if (Stale)
        {
            return;
        }

        for (SortNode n = client; n.Parent is not null; n = n.Parent)
        {
            n.Parent.UpdateShare(n, Share(n));
        }
    }

    public override void Sort()
    {
        if (!Stale)
        {
            return;
        }

        Recompute(Root);
        Stale = false;
    }

    private void Recompute(ContainerNode container)
    {
        for (var i = 0; i < container.KidCount; i++)
        {
            var kid = container.Kid(i);
            if (kid is ContainerNode inner)
            {
                Recompute(inner);
            }

            kid.Share = Share(kid);
        }

        container.SortKids();
    }

    /// <summary>Weighted dominant share of a node.</summary>
    public double Share(SortNode node)
    {
        var allocated = node.Allocated;
        var total = Total;
        var excluded = Excluded;
        var n = Math.Min(allocated.Length, total.Length);
        var max = 0.0;
        for (var k = 0; k < n; k++)
        {
            if (total[k] > 0 && allocated[k] > 0 && !(k < excluded.Length && excluded[k]))
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
}
