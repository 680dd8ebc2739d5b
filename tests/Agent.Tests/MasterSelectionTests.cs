using Scheduler.Agent;
using Xunit;
using Scheduler.LinkClient;

namespace Scheduler.Agent.Tests;

public class MasterSelectionTests
{
    private static readonly TimeSpan Min = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan Max = TimeSpan.FromSeconds(10);

    [Fact]
    public void A_hint_naming_the_master_that_just_failed_is_not_followed()
    {
        var s = new MasterSelection(["m1", "m2", "m3"], Min, Max, new Random(1));
        Assert.Equal("m1", s.Next());
        s.Connected();
        s.Failed("m1");                        // the leader m1 died
        Assert.Equal("m2", s.Next());
        s.Redirected("m2", "m1");              // m2 still names the dead leader
        Assert.Equal("m3", s.Next());          // not m1 again
        s.Redirected("m3", "m2");              // a new leader is known
        Assert.Equal("m2", s.Next());
    }

    [Fact]
    public void Retries_are_quick_within_a_round_and_back_off_only_after_a_whole_round_failed()
    {
        var s = new MasterSelection(["m1", "m2", "m3"], Min, Max, new Random(1));
        var quick = Min * 0.3;
        Assert.True(s.Failed(s.Next()) <= quick);
        Assert.True(s.Failed(s.Next()) <= quick);
        var first = s.Failed(s.Next());        // round exhausted
        Assert.InRange(first, Min * 0.5, Min * 1.5);
        Assert.True(s.Failed(s.Next()) <= quick);
        Assert.True(s.Failed(s.Next()) <= quick);
        var second = s.Failed(s.Next());       // doubled
        Assert.InRange(second, Min, Min * 3);
        // Live followers answering keep retries quick however long the election takes.
        for (var i = 0; i < 20; i++)
        {
            Assert.True(s.Redirected(s.Next(), "") <= quick);
        }
    }
}
