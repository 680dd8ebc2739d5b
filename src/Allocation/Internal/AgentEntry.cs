using Sched.V1;
using Scheduler.Allocation.Sorting;

namespace Scheduler.Allocation.Internal;

/// <summary>Resources a client holds on one agent (offered or allocated).</summary>
internal sealed class Holding : Bag
{
    public Holding(ClientNode client)
        : base(4) => Client = client;

    public ClientNode Client { get; }

    public Bag Resources => this;
}

/// <summary>An agent as the allocator tracks it: total, free, holdings, decline filters.</summary>
internal sealed class AgentEntry
{
    public AgentEntry(AgentSpec spec, Bag total)
    {
        Spec = spec;
        Total = total;
        Free = total.Clone();
    }

    public string Id => Spec.AgentId;

    public AgentSpec Spec { get; set; }

    public Bag Total { get; set; }

    /// <summary>Total minus everything held by clients.</summary>
    public Bag Free { get; set; }

    public List<Holding> Holdings { get; } = new(2);

    public bool Active { get; set; } = true;

    public bool Removed { get; set; }

    /// <summary>Index in the allocator's agent list (for O(1) removal).</summary>
    public int ListIndex { get; set; }

    public bool HasGpus { get; set; }

    /// <summary>Counted in the cluster's free-unreserved figures (active and not draining).</summary>
    public bool CountsForHeadroom => Active && !Spec.Draining && !Removed;

    public bool Offerable => Active && !Spec.Draining && !Removed;

    /// <summary>Queued for the next incremental cycle.</summary>
    public bool Queued { get; set; }

    private DeclineFilters? _filters;

    /// <summary>Decline filters, created on first use (most agents never have any).</summary>
    public DeclineFilters Filters => _filters ??= new DeclineFilters();

    /// <summary>The filters if any were ever set (no allocation).</summary>
    public DeclineFilters? FiltersOrNull => _filters;

    public bool IsFiltered(int framework, long now) => _filters is not null && _filters.IsFiltered(framework, now);

    /// <summary>Earliest filter expiry already pushed to the expiry queue (long.MaxValue: none).</summary>
    public long ScheduledExpiry { get; set; } = long.MaxValue;

    public Holding? FindHolding(ClientNode client)
    {
        foreach (var h in Holdings)
        {
            if (ReferenceEquals(h.Client, client))
            {
                return h;
            }
        }

        return null;
    }

    public Holding GetOrAddHolding(ClientNode client)
    {
        var h = FindHolding(client);
        if (h is null)
        {
            h = new Holding(client);
            Holdings.Add(h);
        }

        return h;
    }

    public Sched.V1.Attribute? FindAttribute(string name)
    {
        foreach (var a in Spec.Attributes)
        {
            if (a.Name == name)
            {
                return a;
            }
        }

        return null;
    }
}
