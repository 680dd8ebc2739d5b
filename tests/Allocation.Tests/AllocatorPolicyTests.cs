using Sched.V1;
using Scheduler.Protocol.Resources;
using Xunit;
using static Scheduler.Allocation.Tests.AllocatorHarness;

namespace Scheduler.Allocation.Tests;

/// <summary>Quota, weights, hierarchy, reservations and fairness scenarios.</summary>
public class AllocatorPolicyTests
{
    private static double Cpus(IEnumerable<OfferGrant> grants, string framework) =>
        grants.Where(g => g.FrameworkId == framework).Sum(g => ResourceSet.From(g.Resources.Select(StripRole)).Scalar("cpus"));

    private static double HeldCpus(HierarchicalDrfAllocator allocator, string framework) =>
        ResourceSet.From(allocator.GetSnapshot().Frameworks.Single(f => f.FrameworkId == framework).Allocated).Scalar("cpus");

    [Fact]
    public void A_quota_limit_is_never_exceeded_and_cuts_offers()
    {
        var h = new AllocatorHarness();
        for (var i = 0; i < 4; i++)
        {
            h.AddAgent($"a{i}", "cpus:2;mem:1024");
        }

        h.Allocator.UpdateQuota(Quota("web", "", "cpus:3"));
        h.AddFramework("f1", "web");
        var grants = h.Allocator.Allocate();

        Assert.Equal(3, Cpus(grants, "f1"));
        Assert.Contains(grants, g => Text(g) == "cpus:1;mem:1024");
        var role = h.Allocator.GetSnapshot().Roles.Single(r => r.Role == "web");
        Assert.Equal(3, ResourceSet.From(role.Allocated).Scalar("cpus"));
        Assert.NotNull(role.Quota);
    }

    [Fact]
    public void A_parent_limit_constrains_its_subtree()
    {
        var h = new AllocatorHarness();
        for (var i = 0; i < 10; i++)
        {
            h.AddAgent($"a{i}", "cpus:2;mem:1024");
        }

        h.Allocator.UpdateQuota(Quota("eng", "", "cpus:5"));
        h.AddFramework("web", "eng/web");
        h.AddFramework("batch", "eng/batch");
        h.AddFramework("ops", "ops");
        var grants = h.Allocator.Allocate();

        Assert.Equal(5, Cpus(grants, "web") + Cpus(grants, "batch"));
        Assert.Equal(15, Cpus(grants, "ops"));
    }

    [Fact]
    public void Unreserved_resources_stay_free_for_unsatisfied_guarantees()
    {
        var h = new AllocatorHarness();
        for (var i = 0; i < 4; i++)
        {
            h.AddAgent($"a{i}", "cpus:2;mem:1024");
        }

        h.Allocator.UpdateQuota(Quota("prod", "cpus:4", ""));
        h.AddFramework("other", "batch");
        var grants = h.Allocator.Allocate();
        Assert.Equal(4, Cpus(grants, "other"));

        h.AddFramework("prod-fw", "prod");
        var prod = h.Cycle();
        Assert.Equal(4, Cpus(prod, "prod-fw"));
        Assert.All(prod, g => Assert.Equal("prod-fw", g.FrameworkId));
    }

    [Fact]
    public void Reserved_resources_count_toward_the_guarantee()
    {
        var h = new AllocatorHarness();
        h.AddAgent("r", "cpus(prod):4;mem(prod):1024");
        h.AddAgent("u1", "cpus:4;mem:1024");
        h.AddAgent("u2", "cpus:4;mem:1024");
        h.Allocator.UpdateQuota(Quota("prod", "cpus:4", ""));
        h.AddFramework("other", "batch");

        // The reservation satisfies prod's guarantee: no headroom is held back.
        Assert.Equal(8, Cpus(h.Allocator.Allocate(), "other"));
    }

    [Fact]
    public void A_guaranteed_role_gets_its_guarantee_back_before_others_when_tasks_finish()
    {
        var h = new AllocatorHarness(seed: 3);
        for (var i = 0; i < 50; i++)
        {
            h.AddAgent($"a{i}", "cpus:2;mem:2048");
        }

        h.AddFramework("fo", "o");
        h.AddFramework("fo2", "o2");
        var running = new List<OfferGrant>(h.Allocator.Allocate());
        Assert.Equal(100, Cpus(running, "fo") + Cpus(running, "fo2"));

        // A tiny weight: plain DRF would stop serving g after one agent; its guarantee must win.
        h.Allocator.UpdateWeights([new WeightInfo { Role = "g", Weight = 0.01 }]);
        h.Allocator.UpdateQuota(Quota("g", "cpus:20", ""));
        h.AddFramework("fg", "g");
        Assert.Empty(h.Cycle());

        var random = new Random(5);
        for (var step = 0; step < 30; step++)
        {
            var others = running.Where(g => g.FrameworkId != "fg").ToList();
            var finished = others[random.Next(others.Count)];
            running.Remove(finished);
            h.Allocator.RecoverResources(finished.FrameworkId, finished.AgentId, finished.Resources, null);
            var before = HeldCpus(h.Allocator, "fg");
            var grants = h.Cycle();
            running.AddRange(grants);
            if (before < 20)
            {
                Assert.All(grants, g => Assert.Equal("fg", g.FrameworkId));
            }
        }

        Assert.Equal(20, HeldCpus(h.Allocator, "fg"));
        Assert.False(h.Allocator.GetSnapshot().Roles.Single(r => r.Role == "g").Quota is null);

        // fg's own tasks finish: the freed resources come back to fg, not to the others.
        foreach (var done in running.Where(g => g.FrameworkId == "fg").Take(3).ToList())
        {
            running.Remove(done);
            h.Allocator.RecoverResources("fg", done.AgentId, done.Resources, null);
        }

        var back = h.Cycle();
        Assert.Equal(6, Cpus(back, "fg"));
        Assert.All(back, g => Assert.Equal("fg", g.FrameworkId));
    }

    /// <summary>Frameworks keep everything they are offered (launch on all of it); tasks finish at random.</summary>
    private static (double, double) Converge(AllocatorHarness h, List<OfferGrant> running, string f1, string f2, int steps)
    {
        var random = new Random(11);
        for (var step = 0; step < steps; step++)
        {
            var finished = running[random.Next(running.Count)];
            running.Remove(finished);
            h.Allocator.RecoverResources(finished.FrameworkId, finished.AgentId, finished.Resources, null);
            running.AddRange(h.Cycle());
        }

        return (HeldCpus(h.Allocator, f1), HeldCpus(h.Allocator, f2));
    }

    [Fact]
    public void Two_greedy_frameworks_converge_to_half_each()
    {
        var h = new AllocatorHarness(seed: 9);
        for (var i = 0; i < 50; i++)
        {
            h.AddAgent($"a{i}", "cpus:2;mem:2048");
        }

        // f1 arrives first and takes the whole cluster; f2 must catch up as tasks finish.
        h.AddFramework("f1", "web");
        var running = h.Allocator.Allocate().ToList();
        Assert.Equal(50, running.Count);
        h.AddFramework("f2", "web");
        Assert.Empty(h.Cycle());
        var (a, b) = Converge(h, running, "f1", "f2", 300);

        Assert.Equal(100, a + b);
        Assert.InRange(a, 48, 52);
    }

    [Fact]
    public void Weights_two_to_one_give_two_to_one()
    {
        var h = new AllocatorHarness(seed: 4);
        for (var i = 0; i < 60; i++)
        {
            h.AddAgent($"a{i}", "cpus:2;mem:2048");
        }

        h.Allocator.UpdateWeights([new WeightInfo { Role = "gold", Weight = 2 }, new WeightInfo { Role = "bronze", Weight = 1 }]);
        h.AddFramework("g", "gold");
        h.AddFramework("b", "bronze");
        var (gold, bronze) = Converge(h, h.Allocator.Allocate().ToList(), "g", "b", 300);

        Assert.Equal(120, gold + bronze);
        Assert.InRange(gold, 78, 82);
        var roles = h.Allocator.GetSnapshot().Roles;
        Assert.Equal(2, roles.Single(r => r.Role == "gold").Weight);
    }

    [Fact]
    public void Drf_is_applied_level_by_level_in_the_role_tree()
    {
        var h = new AllocatorHarness(seed: 2);
        for (var i = 0; i < 60; i++)
        {
            h.AddAgent($"a{i}", "cpus:1;mem:1024");
        }

        h.AddFramework("web", "eng/web");
        h.AddFramework("batch", "eng/batch");
        h.AddFramework("ops", "ops");
        var grants = h.Allocator.Allocate();

        Assert.Equal(30, Cpus(grants, "ops"));
        Assert.Equal(15, Cpus(grants, "web"));
        Assert.Equal(15, Cpus(grants, "batch"));
        var eng = h.Allocator.GetSnapshot().Roles.Single(r => r.Role == "eng");
        Assert.Equal(0.5, eng.DominantShare, 3);
    }

    [Fact]
    public void Dominant_share_uses_the_dominant_resource()
    {
        var h = new AllocatorHarness(seed: 1);
        for (var i = 0; i < 20; i++)
        {
            h.AddAgent($"a{i}", "cpus:10;mem:10000");
        }

        h.AddFramework("cpu-heavy", "a");
        h.AddFramework("mem-heavy", "b");
        var running = new List<OfferGrant>(h.Allocator.Allocate());

        // cpu-heavy uses all cpus of its offers but little memory, and returns the memory.
        foreach (var g in running.Where(g => g.FrameworkId == "cpu-heavy"))
        {
            h.Allocator.RecoverResources(g.FrameworkId, g.AgentId, ResourceSet.Parse("mem:9000").WithAllocationRole("a").ToList(), TimeSpan.FromHours(1));
        }

        var shares = h.Allocator.GetSnapshot().Frameworks.ToDictionary(f => f.FrameworkId, f => f.DominantShare);
        Assert.Equal(0.5, shares["cpu-heavy"], 3);
        Assert.Equal(0.5, shares["mem-heavy"], 3);
    }

    [Fact]
    public void Dynamic_reservations_via_operations_are_offered_to_the_role_only()
    {
        var h = new AllocatorHarness();
        h.AddAgent("a1", "cpus:4;mem:4096");
        h.AddFramework("f1", "web");
        var offer = Assert.Single(h.Allocator.Allocate());

        var from = ResourceSet.Parse("cpus:1;mem:1024").WithAllocationRole("web").ToList();
        var to = ResourceSet.Parse("cpus(web,dynamic,p):1;mem(web,dynamic,p):1024").WithAllocationRole("web").ToList();
        h.Allocator.UpdateAllocation("f1", "a1", from, to);
        h.Allocator.RecoverResources("f1", "a1", h.Allocator.GetHeld("f1", "a1"), TimeSpan.FromHours(1));
        Assert.Single(h.Allocator.GetSnapshot().Roles, r => r.Role == "web" && ResourceSet.From(r.Reserved).Scalar("cpus") == 1);

        h.AddFramework("batch", "batch");
        var batchOffer = Assert.Single(h.Cycle());
        Assert.Equal("cpus:3;mem:3072", Text(batchOffer));
        h.Allocator.RecoverResources("batch", "a1", batchOffer.Resources, TimeSpan.FromHours(1));

        h.AddFramework("f2", "web");
        var webOffer = Assert.Single(h.Cycle());
        Assert.Equal("f2", webOffer.FrameworkId);
        Assert.Equal("cpus:3;mem:3072;cpus(web,dynamic,p):1;mem(web,dynamic,p):1024", Text(webOffer));

        Assert.Throws<ArgumentException>(() => h.Allocator.UpdateAllocation("f1", "a1", from, to));
    }

    [Fact]
    public void Agent_updates_after_unreserve_return_resources_to_everyone()
    {
        var h = new AllocatorHarness();
        h.AddAgent("a1", "cpus(web):4;mem(web):1024");
        h.AddFramework("batch", "batch");
        Assert.Empty(h.Allocator.Allocate());
        h.Allocator.UpdateAgent(Agent("a1", "cpus:4;mem:1024"));
        Assert.Equal("cpus:4;mem:1024", Text(Assert.Single(h.Cycle())));
    }

    [Fact]
    public void Removing_a_quota_releases_headroom()
    {
        var h = new AllocatorHarness();
        h.AddAgent("a1", "cpus:4;mem:4096");
        h.Allocator.UpdateQuota(Quota("prod", "cpus:4", ""));
        h.AddFramework("f", "batch");
        Assert.Equal("mem:4096", Text(Assert.Single(h.Allocator.Allocate())));
        h.Allocator.UpdateQuota(new QuotaInfo { Role = "prod" });
        Assert.Equal("cpus:4", Text(Assert.Single(h.Cycle())));
    }
}
