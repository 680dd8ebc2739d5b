using Microsoft.Extensions.Time.Testing;
using Sched.V1;
using Scheduler.Protocol.Resources;

namespace Scheduler.Allocation.Tests;

/// <summary>Builds specs and drives a <see cref="HierarchicalDrfAllocator"/> with virtual time.</summary>
public sealed class AllocatorHarness
{
    public AllocatorHarness(int seed = 1, AllocatorOptions? options = null)
    {
        Time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        Allocator = new HierarchicalDrfAllocator(options ?? new AllocatorOptions(), Time, new Random(seed));
    }

    public FakeTimeProvider Time { get; }

    public HierarchicalDrfAllocator Allocator { get; }

    public static AgentSpec Agent(string id, string resources, string attributes = "", bool draining = false)
    {
        var attrs = new List<Sched.V1.Attribute>();
        foreach (var pair in attributes.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = pair.Split(':', 2);
            attrs.Add(new Sched.V1.Attribute { Name = parts[0], Text = parts[1] });
        }

        return new AgentSpec(id, id + ".local", ResourceSet.Parse(resources).ToList(), attrs, draining);
    }

    public static FrameworkSpec Framework(
        string id,
        string[] roles,
        FrameworkCapability[]? capabilities = null,
        OfferConstraint[]? constraints = null,
        MinAllocatable[]? minimum = null,
        string[]? suppressed = null) =>
        new(id, roles, capabilities ?? [], constraints ?? [], minimum ?? [], suppressed ?? []);

    public static FrameworkSpec Framework(string id, string role) => Framework(id, [role]);

    public void AddAgent(string id, string resources, string attributes = "") =>
        Allocator.AddAgent(Agent(id, resources, attributes), []);

    public void AddFramework(string id, string role) => Allocator.AddFramework(Framework(id, role), []);

    /// <summary>Runs a cycle after the batching interval.</summary>
    public IReadOnlyList<OfferGrant> Cycle()
    {
        Time.Advance(TimeSpan.FromMilliseconds(100));
        return Allocator.Allocate();
    }

    public void Decline(OfferGrant grant, double refuseSeconds) =>
        Allocator.RecoverResources(grant.FrameworkId, grant.AgentId, grant.Resources, refuseSeconds > 0 ? TimeSpan.FromSeconds(refuseSeconds) : null);

    public static string Text(OfferGrant grant) => ResourceSet.From(grant.Resources.Select(r => StripRole(r))).ToString();

    public static Resource StripRole(Resource r)
    {
        var c = r.Clone();
        c.AllocationRole = "";
        return c;
    }

    public static QuotaInfo Quota(string role, string guarantees, string limits)
    {
        var q = new QuotaInfo { Role = role };
        q.Guarantees.AddRange(ResourceSet.Parse(guarantees));
        q.Limits.AddRange(ResourceSet.Parse(limits));
        return q;
    }
}
