using Scheduler.Allocation.Internal;

namespace Scheduler.Allocation.Sorting;

/// <summary>
/// What every sorter shares: the role tree, clients, offerable counts (so a walk skips subtrees
/// with nothing to offer to), allocation vectors, the cluster total, and the depth-first walk
/// over each level's order. Subclasses decide the order (<see cref="Sort"/>, <see cref="OnAllocationChanged"/>).
/// </summary>
internal abstract class RoleTreeSorter : IRoleSorter
{
    private int _seq;

    protected RoleTreeSorter() => Root = new RoleNode("", null, _seq++, _seq++);

    public RoleNode Root { get; }

    /// <summary>Cluster total by scalar name, in milli-units.</summary>
    protected long[] Total { get; private set; } = [];

    protected bool[] Excluded { get; private set; } = [];

    /// <summary>Totals or weights changed since the last full <see cref="Sort"/>.</summary>
    protected bool Stale { get; set; } = true;

    public RoleNode AddRole(string name, RoleNode parent)
    {
        var node = new RoleNode(name, parent, _seq++, _seq++);
        parent.AddKid(node);
        return node;
    }

    public void RemoveRole(RoleNode role)
    {
        role.ParentRole!.RemoveKid(role);
        Stale = true;
    }

    public ClientNode AddClient(FrameworkEntry framework, RoleNode role)
    {
        var client = new ClientNode(framework, role, _seq++);
        role.Own.AddKid(client);
        for (var r = role; r is not null; r = r.ParentRole)
        {
            r.Clients++;
        }

        UpdateOfferable(client);
        return client;
    }

    public void RemoveClient(ClientNode client)
    {
        client.Retired = true;
        UpdateOfferable(client);
        client.Role.Own.RemoveKid(client);
        for (var r = client.Role; r is not null; r = r.ParentRole)
        {
            r.Clients--;
        }
    }

    public void UpdateOfferable(ClientNode client)
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

    public virtual void UpdateWeight(RoleNode role, double weight)
    {
        role.RoleWeight = weight;
        Stale = true;
    }

    public void AddTotal(int name, long delta)
    {
        var total = Total;
        Vec.Add(ref total, name, delta);
        Total = total;
        Stale = true;
    }

    public void ExcludeFromFairness(bool[] excluded) => Excluded = excluded;

    public void Allocated(ClientNode client, Bag resources) => Change(client, resources, +1);

    public void Unallocated(ClientNode client, Bag resources) => Change(client, resources, -1);

    private void Change(ClientNode client, Bag resources, int sign)
    {
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
        }

        OnAllocationChanged(client);
    }

    /// <summary>The allocation of <paramref name="client"/> (and so of its ancestors) changed.</summary>
    protected abstract void OnAllocationChanged(ClientNode client);

    public abstract void Sort();

    public ClientNode? First(ISortWalk walk) => First(Root, walk, false);

    private static ClientNode? First(ContainerNode container, ISortWalk walk, bool scope)
    {
        for (var i = 0; i < container.KidCount; i++)
        {
            var kid = container.Kid(i);
            if (kid.Offerable == 0)
            {
                continue;
            }

            switch (kid)
            {
                case ClientNode client:
                    if (walk.Take(client, scope))
                    {
                        return client;
                    }

                    break;
                case RoleNode role:
                    if (walk.Enter(role, scope, out var inner) && First(role, walk, inner) is { } fromRole)
                    {
                        return fromRole;
                    }

                    break;
                case ContainerNode own:
                    if (First(own, walk, scope) is { } fromOwn)
                    {
                        return fromOwn;
                    }

                    break;
                default:
                    break;
            }
        }

        return null;
    }

    public double DominantShare(long[] allocated)
    {
        var total = Total;
        var excluded = Excluded;
        var max = 0.0;
        for (var k = 0; k < Math.Min(allocated.Length, total.Length); k++)
        {
            if (total[k] > 0 && !(k < excluded.Length && excluded[k]))
            {
                max = Math.Max(max, (double)allocated[k] / total[k]);
            }
        }

        return max;
    }
}
