using Xunit;
using Scheduler.LinkClient;

namespace Scheduler.Agent.Tests;

/// <summary>The silence rule the agent and the simulated agents share.</summary>
public sealed class HeartbeatIntervalTests
{
    [Theory]
    [InlineData(4.0, 0.4)] // interval shortened: the tick scheduled at 4 s still counts
    [InlineData(0.4, 4.0)] // interval lengthened: the announced one counts at once
    [InlineData(4.0, 4.0)]
    public void Silence_is_three_pings_at_the_longer_interval(double scheduledSeconds, double announcedSeconds)
    {
        var allowed = HeartbeatInterval.AllowedSilence(TimeSpan.FromSeconds(scheduledSeconds), TimeSpan.FromSeconds(announcedSeconds));
        Assert.Equal(TimeSpan.FromSeconds(12.2), allowed);
    }
}
