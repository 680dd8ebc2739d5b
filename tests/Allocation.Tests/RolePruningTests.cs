using Sched.V1;
using Xunit;
using static Scheduler.Allocation.Tests.AllocatorHarness;

namespace Scheduler.Allocation.Tests;

/// <summary>Roles come and go with frameworks and quotas; the role table keeps only the roles
/// something still holds.</summary>
public class RolePruningTests
{
    private static List<string> Roles(AllocatorHarness h) => h.Allocator.GetSnapshot().Roles.Select(r => r.Role).ToList();

    [Fact]
    public void A_role_and_its_parents_go_when_the_last_framework_in_them_is_removed()
    {
        var h = new AllocatorHarness();
        h.AddAgent("a1", "cpus:4;mem:4096");
        for (var i = 0; i < 100; i++)
        {
            h.AddFramework($"f{i}", $"tmp{i}/batch");
            Assert.Contains(h.Cycle(), g => g.FrameworkId == $"f{i}");
            h.Allocator.RemoveFramework($"f{i}");
        }
        Assert.Empty(Roles(h));
        // The allocator still works on the pruned tree, and a pruned role can come back.
        h.AddFramework("again", "tmp7/batch");
        Assert.Equal("again", Assert.Single(h.Cycle()).FrameworkId);
        Assert.Equal(["tmp7", "tmp7/batch"], Roles(h));
    }

    [Fact]
    public void A_role_held_only_by_a_removed_quota_goes_but_one_with_a_weight_quota_or_reservation_stays()
    {
        var h = new AllocatorHarness();
        h.AddAgent("a1", "cpus:4;mem:4096;cpus(reserved):1");
        h.Allocator.UpdateQuota(Quota("q", "cpus:1", ""));
        h.Allocator.UpdateQuota(Quota("q2", "cpus:1", ""));
        h.Allocator.UpdateWeights([new WeightInfo { Role = "w", Weight = 2 }]);
        Assert.Equal(["q", "q2", "reserved", "w"], Roles(h));

        h.Allocator.UpdateQuota(new QuotaInfo { Role = "q" });
        h.Allocator.UpdateQuota(new QuotaInfo { Role = "never-had-one" });
        Assert.Equal(["q2", "reserved", "w"], Roles(h));
    }

    [Fact]
    public void A_role_a_framework_leaves_goes_while_the_framework_stays()
    {
        var h = new AllocatorHarness();
        h.Allocator.AddFramework(Framework("f1", ["web", "batch/nightly"]), []);
        Assert.Equal(["batch", "batch/nightly", "web"], Roles(h));
        h.Allocator.UpdateFramework(Framework("f1", ["web"]));
        Assert.Equal(["web"], Roles(h));
        h.Allocator.RemoveFramework("f1");
        Assert.Empty(Roles(h));
    }
}

/// <summary>Reservations come and go: a reservation's pool and its role go with the last agent
/// resources reserved that way, so the pool table and the role list follow the reservations that
/// exist, not all that ever did.</summary>
public class ReservationPoolReleaseTests
{
    private const int Roles = 10_000;

    private static int RoleCount(AllocatorHarness h) => h.Allocator.GetSnapshot().Roles.Count;

    [Fact]
    public void Ten_thousand_roles_reserved_for_on_an_agent_and_unreserved_leave_the_roles_and_pools_at_their_baseline()
    {
        var h = new AllocatorHarness();
        h.AddAgent("a1", "cpus:4;mem:4096");
        h.AddAgent("static", "cpus:1;cpus(kept):1");
        h.Cycle();
        var (baseRoles, basePools) = (RoleCount(h), h.Allocator.PoolCount);
        Assert.Equal((1, 2), (baseRoles, basePools)); // "kept" and its pool stay: its agent still has them

        for (var i = 0; i < Roles; i++)
        {
            var role = $"tenant{i}/batch";
            h.Allocator.UpdateAgent(Agent("a1", $"cpus:3;mem:4096;cpus({role}):1"));
            h.AddFramework($"f{i}", role);
            if (i % 1000 == 0)
            {
                // A framework takes an offer of its reservation, and gives it back when it goes.
                Assert.Contains(h.Cycle(), g => g.FrameworkId == $"f{i}");
            }
            h.Allocator.RemoveFramework($"f{i}");
            h.Allocator.UpdateAgent(Agent("a1", "cpus:4;mem:4096"));
            if (i % 97 == 0)
            {
                h.Cycle();
            }
        }

        h.Cycle();
        Assert.Equal(baseRoles, RoleCount(h));
        Assert.Equal(basePools, h.Allocator.PoolCount);

        // The freed places are reused: the allocator still offers reserved and unreserved resources right.
        h.Allocator.UpdateAgent(Agent("a1", "cpus:3;mem:4096;cpus(again):1"));
        h.AddFramework("g", "again");
        var grant = Assert.Single(h.Cycle(), g => g.AgentId == "a1");
        Assert.Equal(4, grant.Resources.Where(r => r.Name == "cpus").Sum(r => r.Scalar));
        Assert.Contains(grant.Resources, r => r.Name == "cpus" && r.Reservation?.Role == "again");
        Assert.Equal(basePools + 1, h.Allocator.PoolCount);
    }

    [Fact]
    public void Reservations_made_and_removed_by_frameworks_and_agents_that_leave_release_their_pools_and_roles()
    {
        var h = new AllocatorHarness();
        for (var i = 0; i < Roles; i++)
        {
            var role = $"r{i}";
            // Reserved on an agent that then leaves with the reservation still on it …
            h.AddAgent($"a{i}", $"cpus:1;cpus({role}):1");
            if (i % 500 == 0)
            {
                h.Cycle();
            }
            h.Allocator.RemoveAgent($"a{i}");
        }

        // … and a framework's own RESERVE then UNRESERVE of what it was offered.
        h.AddAgent("b", "cpus:2;mem:1024");
        h.AddFramework("f", "web");
        var offer = Assert.Single(h.Cycle());
        var cpu = offer.Resources.First(r => r.Name == "cpus").Clone();
        cpu.Scalar = 1;
        var reserved = cpu.Clone();
        reserved.Reservation = new Sched.V1.Reservation { Role = "web", Type = Sched.V1.Reservation.Types.Type.Dynamic, Principal = "p" };
        h.Allocator.UpdateAllocation("f", "b", [cpu], [reserved]);
        h.Cycle();
        Assert.Equal(2, h.Allocator.PoolCount);
        h.Allocator.UpdateAllocation("f", "b", [reserved], [cpu]);
        h.Allocator.RemoveFramework("f");
        h.Cycle();

        Assert.Equal(0, RoleCount(h));
        Assert.Equal(1, h.Allocator.PoolCount);
    }
}
