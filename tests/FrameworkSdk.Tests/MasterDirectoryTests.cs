using Xunit;

namespace Scheduler.FrameworkSdk.Tests;

public sealed class MasterDirectoryTests
{
    [Fact]
    public void A_subscription_forgets_the_failed_master_so_a_later_hint_to_it_is_followed()
    {
        using var masters = new MasterDirectory(["10.0.0.1:5050", "10.0.0.2:5050", "10.0.0.3:5050"]);
        // The first master does not answer: a stale hint naming it is not followed.
        masters.MoveNext();
        Assert.Equal("10.0.0.2:5050", masters.Current);
        Assert.False(masters.FollowLeader("10.0.0.1:5050"));
        Assert.Equal("10.0.0.3:5050", masters.Current);

        // Subscribed to the third; later the first master comes back and is elected.
        masters.Connected("10.0.0.3:5050");
        Assert.Equal("10.0.0.3:5050", masters.Current);
        Assert.True(masters.FollowLeader("10.0.0.1:5050"));
        Assert.Equal("10.0.0.1:5050", masters.Current);
    }
}
