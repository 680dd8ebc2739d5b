using Sched.V1;
using Xunit;
using static Scheduler.Allocation.Tests.AllocatorHarness;

namespace Scheduler.Allocation.Tests;

/// <summary>A raised quota limit must show in the next offers, for a single-role framework and for
/// a multi-role one whose role is a child (the notebook-per-user case: roles notebooks and
/// notebooks/USER).</summary>
public sealed class QuotaRaiseTests
{
    [Theory]
    [InlineData("notebooks/carol")]
    [InlineData("notebooks,notebooks/carol")]
    public void A_raised_limit_is_offered_after_a_decline(string roleList)
    {
        var roles = roleList.Split(',');
        var h = new AllocatorHarness();
        h.AddAgent("a1", "cpus:4;mem:4096");
        h.Allocator.UpdateQuota(Quota("notebooks/carol", "", "cpus:0.25"));
        h.Allocator.AddFramework(Framework("f1", roles, [FrameworkCapability.MultiRole]), []);
        if (roles.Length > 1)
        {
            h.Allocator.SuppressOffers("f1", ["notebooks"]);
        }

        var all = h.Cycle();
        var first = all.Where(g => g.Role == "notebooks/carol").ToList();
        Assert.Equal(0.25, first.Sum(g => g.Resources.Where(r => r.Name == "cpus").Sum(r => r.Scalar)), 6);

        foreach (var g in first)
        {
            h.Decline(g, 0);
        }
        h.Allocator.UpdateQuota(Quota("notebooks/carol", "", "cpus:1"));
        var second = h.Cycle().Where(g => g.Role == "notebooks/carol").ToList();
        Assert.Equal(1, second.Sum(g => g.Resources.Where(r => r.Name == "cpus").Sum(r => r.Scalar)), 6);
    }
}
