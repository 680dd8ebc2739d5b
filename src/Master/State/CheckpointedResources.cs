using Sched.V1;
using Scheduler.Protocol.Resources;

namespace Scheduler.Master.State;

/// <summary>
/// Arithmetic of an agent's checkpointed resources: the dynamic reservations and persistent
/// volumes made by RESERVE and CREATE. They are stored as the resources they became; each one's
/// <see cref="Source"/> is what it was carved out of in the agent's configured resources.
/// </summary>
public static class CheckpointedResources
{
    /// <summary>Whether <paramref name="r"/> differs from what an agent is configured with: it
    /// carries a dynamic reservation (anywhere in its refinement chain) or a persistent volume.</summary>
    public static bool IsCheckpointed(Resource r)
    {
        ArgumentNullException.ThrowIfNull(r);
        if (r.Disk is not null)
        {
            return true;
        }
        for (var res = r.Reservation; res is not null; res = res.RefinedFrom)
        {
            if (res.Type == Reservation.Types.Type.Dynamic)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>What <paramref name="r"/> was made from in the agent's configuration: without its
    /// volume and with its dynamic reservations popped (down to a static one, or unreserved).</summary>
    public static Resource Source(Resource r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var source = r.Clone();
        source.Disk = null;
        source.AllocationRole = "";
        var res = source.Reservation;
        while (res is not null && res.Type == Reservation.Types.Type.Dynamic)
        {
            res = res.RefinedFrom;
        }
        source.Reservation = res;
        return source;
    }

    /// <summary>
    /// The agent's total: <paramref name="configured"/> with every checkpointed resource carved out
    /// of its source. Checkpointed resources whose source the configuration no longer holds (the
    /// agent was restarted with fewer resources) are left out and listed in <paramref name="dropped"/>.
    /// </summary>
    public static List<Resource> Apply(IEnumerable<Resource> configured, IEnumerable<Resource> checkpointed, out List<Resource> applied, out List<Resource> dropped)
    {
        var total = ResourceSet.From(configured.Select(Plain));
        applied = [];
        dropped = [];
        foreach (var c in checkpointed)
        {
            var target = ResourceSet.From([Plain(c)]);
            var source = ResourceSet.From([Source(c)]);
            if (total.Contains(source))
            {
                total = total.Subtract(source).Add(target);
                applied.Add(c);
            }
            else
            {
                dropped.Add(c);
            }
        }
        return total.ToList();
    }

    /// <summary>Replaces <paramref name="from"/> by <paramref name="to"/> in a checkpointed list
    /// (the result of one operation), keeping only checkpointed kinds of resources.</summary>
    public static List<Resource> Convert(IEnumerable<Resource> checkpointed, IEnumerable<Resource> from, IEnumerable<Resource> to)
    {
        var set = ResourceSet.From(checkpointed.Select(Plain));
        set = set.Subtract(ResourceSet.From(from.Where(IsCheckpointed).Select(Plain)));
        set = set.Add(ResourceSet.From(to.Where(IsCheckpointed).Select(Plain)));
        return set.ToList();
    }

    /// <summary>A copy without allocation role (checkpointed and total resources belong to no allocation).</summary>
    public static Resource Plain(Resource r)
    {
        ArgumentNullException.ThrowIfNull(r);
        if (r.AllocationRole.Length == 0)
        {
            return r;
        }
        var c = r.Clone();
        c.AllocationRole = "";
        return c;
    }
}
