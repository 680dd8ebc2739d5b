using Sched.V1;
using Scheduler.Protocol.Resources;
using Xunit;
using static Scheduler.Allocation.Tests.AllocatorHarness;

namespace Scheduler.Allocation.Tests;

public class AllocatorBasicsTests
{
    [Fact]
    public void Offers_the_whole_free_agent_to_the_only_framework()
    {
        var h = new AllocatorHarness();
        h.AddAgent("a1", "cpus:4;mem:4096;disk:10000;ports:[31000-32000]");
        h.AddFramework("f1", "web");

        var grant = Assert.Single(h.Allocator.Allocate());

        Assert.Equal(("f1", "web", "a1"), (grant.FrameworkId, grant.Role, grant.AgentId));
        Assert.Equal("cpus:4;mem:4096;disk:10000;ports:[31000-32000]", Text(grant));
        Assert.All(grant.Resources, r => Assert.Equal("web", r.AllocationRole));
        Assert.Empty(h.Allocator.GetFree("a1"));
        Assert.Empty(h.Cycle());
    }

    [Fact]
    public void Batches_cycles_by_the_interval_and_reports_when_the_next_is_due()
    {
        var h = new AllocatorHarness();
        Assert.Null(h.Allocator.NextCycleDue);
        h.AddAgent("a1", "cpus:1;mem:128");
        h.AddFramework("f1", "web");
        Assert.Single(h.Allocator.Allocate());
        var last = h.Time.GetUtcNow();
        Assert.Null(h.Allocator.NextCycleDue);

        h.AddAgent("a2", "cpus:1;mem:128");
        Assert.Equal(last + TimeSpan.FromMilliseconds(100), h.Allocator.NextCycleDue);
        Assert.Empty(h.Allocator.Allocate());
        var forced = Assert.Single(h.Allocator.Allocate(force: true));
        Assert.Equal("a2", forced.AgentId);
        Assert.Equal(2, h.Allocator.GetSnapshot().Cycles);
    }

    [Fact]
    public void Recovered_resources_are_offered_again_and_a_decline_filter_holds_until_it_expires()
    {
        var h = new AllocatorHarness();
        h.AddAgent("a1", "cpus:2;mem:1024");
        h.AddFramework("f1", "web");
        var first = Assert.Single(h.Allocator.Allocate());

        h.Decline(first, refuseSeconds: 5);
        Assert.Empty(h.Cycle());
        Assert.Equal(1, h.Allocator.GetSnapshot().ActiveFilters);
        Assert.Equal(h.Time.GetUtcNow() + TimeSpan.FromSeconds(4.9), h.Allocator.NextCycleDue);

        h.Time.Advance(TimeSpan.FromSeconds(4.8));
        Assert.Empty(h.Allocator.Allocate());
        h.Time.Advance(TimeSpan.FromSeconds(0.2));
        var again = Assert.Single(h.Allocator.Allocate());
        Assert.Equal("cpus:2;mem:1024", Text(again));
    }

    [Fact]
    public void A_declined_agent_goes_to_another_framework_meanwhile()
    {
        var h = new AllocatorHarness();
        h.AddAgent("a1", "cpus:2;mem:1024");
        h.AddFramework("f1", "web");
        var first = Assert.Single(h.Allocator.Allocate());
        h.AddFramework("f2", "web");
        h.Decline(first, 60);

        var second = Assert.Single(h.Cycle());
        Assert.Equal("f2", second.FrameworkId);
    }

    [Fact]
    public void Recovery_without_filter_reoffers_to_the_lowest_share()
    {
        var h = new AllocatorHarness();
        h.AddAgent("a1", "cpus:2;mem:1024");
        h.AddFramework("f1", "web");
        var first = Assert.Single(h.Allocator.Allocate());
        h.Allocator.RecoverResources("f1", "a1", ResourceSet.Parse("cpus:1;mem:512").ToList(), null);

        var again = Assert.Single(h.Cycle());
        Assert.Equal("cpus:1;mem:512", Text(again));
        Assert.Equal("f1", again.FrameworkId);
    }

    [Fact]
    public void Partial_use_recovers_only_the_rest_and_over_recovery_is_clamped()
    {
        var h = new AllocatorHarness();
        h.AddAgent("a1", "cpus:2;mem:1024;ports:[1-10]");
        h.AddFramework("f1", "web");
        Assert.Single(h.Allocator.Allocate());

        // Recovering more than held must not create resources.
        h.Allocator.RecoverResources("f1", "a1", ResourceSet.Parse("cpus:5;mem:100;ports:[5-20]").ToList(), null);
        Assert.Equal("cpus:2;mem:100;ports:[5-10]", ResourceSet.From(h.Allocator.GetFree("a1")).ToString());
        Assert.Equal("mem:924;ports:[1-4]", ResourceSet.From(h.Allocator.GetHeld("f1", "a1").Select(StripRole)).ToString());
    }

    [Fact]
    public void Suppressed_frameworks_get_nothing_until_revived_and_revive_clears_filters()
    {
        var h = new AllocatorHarness();
        h.AddAgent("a1", "cpus:2;mem:1024");
        h.AddFramework("f1", "web");
        var g = Assert.Single(h.Allocator.Allocate());
        h.Decline(g, 3600);
        h.Allocator.SuppressOffers("f1", []);
        h.Time.Advance(TimeSpan.FromHours(2));
        Assert.Empty(h.Allocator.Allocate());
        Assert.Equal(["web"], h.Allocator.GetSnapshot().Frameworks.Single().SuppressedRoles);

        h.Allocator.ReviveOffers("f1", ["web"]);
        Assert.Single(h.Cycle());
    }

    [Fact]
    public void Revive_clears_decline_filters_at_once()
    {
        var h = new AllocatorHarness();
        h.AddAgent("a1", "cpus:2;mem:1024");
        h.AddFramework("f1", "web");
        h.Decline(Assert.Single(h.Allocator.Allocate()), 3600);
        Assert.Empty(h.Cycle());
        h.Allocator.ReviveOffers("f1", []);
        Assert.Single(h.Cycle());
    }

    [Fact]
    public void Suppression_is_per_role_for_multi_role_frameworks()
    {
        var h = new AllocatorHarness();
        h.AddAgent("a1", "cpus:2;mem:1024");
        h.AddAgent("a2", "cpus:2;mem:1024");
        h.Allocator.AddFramework(Framework("f1", ["web", "batch"], [FrameworkCapability.MultiRole], suppressed: ["web"]), []);

        var grants = h.Allocator.Allocate();
        Assert.Equal(2, grants.Count);
        Assert.All(grants, g => Assert.Equal("batch", g.Role));
    }

    [Fact]
    public void Reserved_resources_go_only_to_their_role_and_sub_roles()
    {
        var h = new AllocatorHarness();
        h.AddAgent("a1", "cpus:1;mem:512;cpus(eng):2;mem(eng):1024");
        h.AddFramework("batch", "batch");
        var other = Assert.Single(h.Allocator.Allocate());
        Assert.Equal("cpus:1;mem:512", Text(other));

        h.AddFramework("api", "eng/api");
        h.Allocator.RecoverResources("batch", "a1", other.Resources, TimeSpan.FromHours(1));
        var sub = Assert.Single(h.Cycle());
        Assert.Equal("api", sub.FrameworkId);
        Assert.Equal("cpus:1;mem:512;cpus(eng):2;mem(eng):1024", Text(sub));
    }

    [Fact]
    public void Reserved_only_agents_are_not_offered_to_other_roles()
    {
        var h = new AllocatorHarness();
        h.AddAgent("a1", "cpus(web):2;mem(web):1024");
        h.AddFramework("f1", "batch");
        Assert.Empty(h.Allocator.Allocate());
        h.AddFramework("f2", "web");
        Assert.Equal("f2", Assert.Single(h.Cycle()).FrameworkId);
    }

    [Fact]
    public void Gpu_agents_only_go_to_gpu_capable_frameworks()
    {
        var h = new AllocatorHarness();
        h.AddAgent("gpu", "cpus:8;mem:8192;gpus:2");
        h.AddAgent("plain", "cpus:8;mem:8192");
        h.AddFramework("cpu-only", "ml");
        var grant = Assert.Single(h.Allocator.Allocate());
        Assert.Equal("plain", grant.AgentId);

        h.Allocator.AddFramework(Framework("trainer", ["ml"], [FrameworkCapability.GpuResources]), []);
        var gpuGrant = Assert.Single(h.Cycle());
        Assert.Equal(("trainer", "gpu"), (gpuGrant.FrameworkId, gpuGrant.AgentId));
        Assert.Equal(2, ResourceSet.From(gpuGrant.Resources).Scalar("gpus"));
    }

    [Fact]
    public void Draining_and_deactivated_agents_and_deactivated_frameworks_get_no_offers()
    {
        var h = new AllocatorHarness();
        h.Allocator.AddAgent(Agent("drain", "cpus:1;mem:128", draining: true), []);
        h.AddAgent("down", "cpus:1;mem:128");
        h.Allocator.DeactivateAgent("down");
        h.AddFramework("f1", "web");
        Assert.Empty(h.Allocator.Allocate());

        h.Allocator.ActivateAgent("down");
        h.Allocator.DeactivateFramework("f1");
        Assert.Empty(h.Cycle());

        h.Allocator.ActivateFramework("f1");
        Assert.Equal("down", Assert.Single(h.Cycle()).AgentId);

        h.Allocator.UpdateAgent(Agent("drain", "cpus:1;mem:128"));
        Assert.Equal("drain", Assert.Single(h.Cycle()).AgentId);
    }

    [Fact]
    public void Attribute_constraints_select_agents()
    {
        var h = new AllocatorHarness();
        h.AddAgent("r1", "cpus:1;mem:128", "rack:r1;zone:a");
        h.AddAgent("r2", "cpus:1;mem:128", "rack:r2");
        h.AddAgent("none", "cpus:1;mem:128");
        OfferConstraint[] constraints =
        [
            new() { Attribute = "rack", Op = OfferConstraint.Types.Op.Exists },
            new() { Attribute = "rack", Op = OfferConstraint.Types.Op.NotEquals, Value = "r2" },
        ];
        h.Allocator.AddFramework(Framework("f1", ["web"], constraints: constraints), []);
        Assert.Equal("r1", Assert.Single(h.Allocator.Allocate()).AgentId);

        h.Allocator.AddFramework(Framework("f2", ["web"], constraints: [new() { Attribute = "zone", Op = OfferConstraint.Types.Op.NotExists }]), []);
        var rest = h.Cycle();
        Assert.Equal(["none", "r2"], rest.Select(g => g.AgentId).Order());
        Assert.All(rest, g => Assert.Equal("f2", g.FrameworkId));

        Assert.Throws<ArgumentException>(() => h.Allocator.AddFramework(Framework("bad", ["web"], constraints: [new() { Attribute = "rack", Op = OfferConstraint.Types.Op.Equals }]), []));
    }

    [Fact]
    public void Offers_below_the_minimum_allocatable_are_not_made()
    {
        var h = new AllocatorHarness();
        h.AddAgent("tiny", "cpus:0.005;mem:16");
        h.AddAgent("mem-only", "mem:64");
        h.AddFramework("f1", "web");
        Assert.Equal("mem-only", Assert.Single(h.Allocator.Allocate()).AgentId);

        // A framework's own minimum replaces the global one.
        var h2 = new AllocatorHarness();
        h2.AddAgent("small", "cpus:1;mem:256");
        h2.AddAgent("big", "cpus:4;mem:4096");
        var min = new MinAllocatable();
        min.Resources.AddRange(ResourceSet.Parse("cpus:2;mem:1024"));
        h2.Allocator.AddFramework(Framework("f1", ["web"], minimum: [min]), []);
        Assert.Equal("big", Assert.Single(h2.Allocator.Allocate()).AgentId);
    }

    [Fact]
    public void Same_seed_gives_the_same_offers()
    {
        static List<string> Run(int seed)
        {
            var h = new AllocatorHarness(seed);
            for (var i = 0; i < 30; i++)
            {
                h.AddAgent($"a{i}", "cpus:2;mem:1024");
            }

            for (var f = 0; f < 7; f++)
            {
                h.AddFramework($"f{f}", f % 2 == 0 ? "web" : "batch");
            }

            return h.Allocator.Allocate().Select(g => $"{g.FrameworkId}@{g.AgentId}").ToList();
        }

        Assert.Equal(Run(7), Run(7));
        Assert.NotEqual(Run(7), Run(8));
    }

    [Fact]
    public void Agents_and_frameworks_with_existing_use_are_accounted()
    {
        var h = new AllocatorHarness();
        var used = new AllocationUse("f1", "a1", "web", ResourceSet.Parse("cpus:3;mem:1000").ToList());
        h.Allocator.AddAgent(Agent("a1", "cpus:4;mem:4096"), [used]);
        Assert.Empty(h.Allocator.Allocate()); // f1 is only known from its tasks: not subscribed yet

        h.Allocator.AddFramework(Framework("f1", "web"), [used]);
        var grant = Assert.Single(h.Cycle());
        Assert.Equal("cpus:1;mem:3096", Text(grant));
        var fw = Assert.Single(h.Allocator.GetSnapshot().Frameworks);
        Assert.Equal(4, ResourceSet.From(fw.Allocated).Scalar("cpus"));
    }

    [Fact]
    public void Removing_an_agent_releases_its_allocation()
    {
        var h = new AllocatorHarness();
        h.AddAgent("a1", "cpus:4;mem:4096");
        h.AddFramework("f1", "web");
        Assert.Single(h.Allocator.Allocate());
        h.Allocator.RemoveAgent("a1");
        var snapshot = h.Allocator.GetSnapshot();
        Assert.Empty(snapshot.Frameworks.Single().Allocated);
        Assert.Equal(0, snapshot.Frameworks.Single().DominantShare);
        h.Allocator.RemoveAgent("a1"); // idempotent
        h.Allocator.RecoverResources("f1", "a1", ResourceSet.Parse("cpus:1").ToList(), TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void Removing_a_framework_that_still_holds_resources_frees_them()
    {
        var h = new AllocatorHarness();
        h.AddAgent("a1", "cpus:4;mem:4096");
        h.AddFramework("f1", "web");
        h.Decline(Assert.Single(h.Allocator.Allocate()), 0);
        Assert.Single(h.Cycle());
        h.Allocator.RemoveFramework("f1");
        Assert.Equal("cpus:4;mem:4096", ResourceSet.From(h.Allocator.GetFree("a1")).ToString());
        h.AddFramework("f2", "web");
        Assert.Equal("f2", Assert.Single(h.Cycle()).FrameworkId);
    }

    [Fact]
    public void Invalid_input_gets_clear_errors()
    {
        var h = new AllocatorHarness();
        var bad = new AgentSpec("a1", "h", [new Resource { Name = "cpus", Scalar = -1 }], []);
        var e = Assert.Throws<ArgumentException>(() => h.Allocator.AddAgent(bad, []));
        Assert.Contains("agent 'a1'", e.Message);
        Assert.Contains("negative", e.Message);

        Assert.Throws<ArgumentException>(() => h.Allocator.AddFramework(Framework("f", ["bad//role"]), []));
        Assert.Throws<ArgumentException>(() => h.Allocator.AddFramework(Framework("f", []), []));
        Assert.Throws<ArgumentException>(() => h.Allocator.SuppressOffers("nope", []));
        Assert.Throws<ArgumentException>(() => h.Allocator.UpdateWeights([new WeightInfo { Role = "web", Weight = 0 }]));
        Assert.Throws<ArgumentException>(() => h.Allocator.UpdateQuota(Quota("web", "ports:[1-2]", "")));
        Assert.Throws<ArgumentException>(() => h.Allocator.UpdateQuota(Quota("web", "cpus:4", "cpus:2")));
        h.AddAgent("a2", "cpus:1");
        Assert.Throws<ArgumentException>(() => h.AddAgent("a2", "cpus:1"));
        Assert.Throws<ArgumentException>(() => h.AddAgent("a3", "cpus:[1-2]"));
    }
}
