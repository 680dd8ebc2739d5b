using Scheduler.Allocation.Internal;

namespace Scheduler.Allocation.Quotas;

/// <summary>
/// Quota accounting beside the sorter: per-role consumption against guarantees and limits, the
/// headroom the cluster must keep free for unsatisfied guarantees, and how much a role may still
/// get. Consumption of a role = resources reserved for its subtree + unreserved resources
/// allocated in its subtree. Scalars only, in milli-units by interned name.
/// </summary>
internal sealed class QuotaLedger
{
    private long[] _freeUnreserved = [];
    private long[] _requiredHeadroom = [];

    public RoleQuota Root { get; } = new(null);

    /// <summary>Some role's guarantee is not met (stage 1 of a cycle serves those first).</summary>
    public bool AnyUnsatisfied => Root.UnsatisfiedInSubtree > 0;

    /// <summary>Free unreserved milli-units of <paramref name="name"/> that unsatisfied guarantees need kept free.</summary>
    public long RequiredHeadroom(int name) => Vec.Get(_requiredHeadroom, name);

    /// <summary>Free unreserved resources on offerable agents changed by <paramref name="delta"/>.</summary>
    public void AddFreeUnreserved(int name, long delta) => Vec.Add(ref _freeUnreserved, name, delta);

    /// <summary>Resources reserved for <paramref name="role"/> changed (counted up the path).</summary>
    public void AddReserved(RoleQuota role, int name, long delta)
    {
        for (var r = role; r is not null; r = r.Parent)
        {
            Vec.Add(ref r.Reserved, name, delta);
        }
    }

    /// <summary>Unreserved resources allocated under <paramref name="role"/> changed (counted up the path).</summary>
    public void AddAllocatedUnreserved(RoleQuota role, int name, long delta)
    {
        for (var r = role; r is not null; r = r.Parent)
        {
            Vec.Add(ref r.AllocatedUnreserved, name, delta);
        }
    }

    /// <summary>Refreshes satisfaction and headroom need of the quota roles on the path role→root.</summary>
    public void RefreshPath(RoleQuota role)
    {
        if (role.GuaranteeRoot is null)
        {
            return;
        }

        for (var r = role; r is not null; r = r.Parent)
        {
            if (r.HasGuarantee)
            {
                RefreshSatisfaction(r);
                if (ReferenceEquals(r.GuaranteeRoot, r))
                {
                    RefreshNeed(r);
                }
            }
        }
    }

    /// <summary>Sets (or with null <paramref name="info"/>, clears) a role's quota, then rebuilds the derived state.</summary>
    public void SetQuota(RoleQuota role, Sched.V1.QuotaInfo? info, long[] guarantee, long[] limit)
    {
        role.Info = info;
        role.Guarantee = guarantee;
        role.Limit = limit;
        role.HasGuarantee = guarantee.Any(g => g > 0);
        role.HasLimit = info is not null && info.Limits.Count > 0;
        Rebuild();
    }

    private static void RefreshSatisfaction(RoleQuota role)
    {
        var unsatisfied = false;
        for (var k = 0; k < role.Guarantee.Length; k++)
        {
            if (role.Guarantee[k] > role.Consumption(k))
            {
                unsatisfied = true;
                break;
            }
        }

        if (unsatisfied == role.Unsatisfied)
        {
            return;
        }

        role.Unsatisfied = unsatisfied;
        var delta = unsatisfied ? 1 : -1;
        for (var r = role; r is not null; r = r.Parent)
        {
            r.UnsatisfiedInSubtree += delta;
        }
    }

    private void RefreshNeed(RoleQuota role)
    {
        for (var k = 0; k < role.Guarantee.Length; k++)
        {
            var need = Math.Max(0, role.Guarantee[k] - role.Consumption(k));
            var counted = Vec.Get(role.CountedNeed, k);
            if (need != counted)
            {
                Vec.Add(ref _requiredHeadroom, k, need - counted);
                Vec.Add(ref role.CountedNeed, k, need - counted);
            }
        }
    }

    /// <summary>Rebuilds limit/guarantee paths, satisfaction counts and the required headroom.</summary>
    public void Rebuild()
    {
        _requiredHeadroom = [];
        Visit(Root, false, null);

        int Visit(RoleQuota role, bool limitOnPath, RoleQuota? guaranteeRoot)
        {
            role.LimitOnPath = limitOnPath || role.HasLimit;
            role.GuaranteeRoot = guaranteeRoot ?? (role.HasGuarantee ? role : null);
            role.CountedNeed = [];
            role.Unsatisfied = false;
            if (role.HasGuarantee)
            {
                for (var k = 0; k < role.Guarantee.Length; k++)
                {
                    role.Unsatisfied |= role.Guarantee[k] > role.Consumption(k);
                }

                if (ReferenceEquals(role.GuaranteeRoot, role))
                {
                    RefreshNeed(role);
                }
            }

            var count = role.Unsatisfied ? 1 : 0;
            foreach (var sub in role.Children)
            {
                count += Visit(sub, role.LimitOnPath, role.GuaranteeRoot);
            }

            role.UnsatisfiedInSubtree = count;
            return count;
        }
    }

    /// <summary>How much more of unreserved scalar <paramref name="name"/> the role may get before some limit on its path.</summary>
    public static long LimitRemaining(RoleQuota role, int name)
    {
        var remaining = long.MaxValue;
        for (var r = role; r is not null; r = r.Parent)
        {
            if (r.HasLimit && name < r.Limit.Length && r.Limit[name] >= 0)
            {
                remaining = Math.Min(remaining, Math.Max(0, r.Limit[name] - r.Consumption(name)));
            }
        }

        return remaining;
    }

    /// <summary>
    /// How much unreserved <paramref name="name"/> may go to <paramref name="role"/> without leaving
    /// less free than the sum of unsatisfied guarantees: the role's own remaining guarantee plus
    /// whatever is free beyond the headroom everyone's guarantees need.
    /// </summary>
    public long HeadroomAllowance(RoleQuota role, int name)
    {
        var required = Vec.Get(_requiredHeadroom, name);
        if (required <= 0)
        {
            return long.MaxValue;
        }

        var available = Math.Max(0, Vec.Get(_freeUnreserved, name) - required);
        var own = role.GuaranteeRoot is { } g ? Vec.Get(g.CountedNeed, name) : 0;
        return own + available;
    }
}
