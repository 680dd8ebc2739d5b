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
