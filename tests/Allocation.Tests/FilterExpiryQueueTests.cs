using Xunit;

namespace Scheduler.Allocation.Tests;

/// <summary>The decline-filter expiry queue must not keep removed agents alive (reconnect storms
/// with long filters) and must keep serving the filters of agents still there.</summary>
public sealed class FilterExpiryQueueTests
{
    private const int Agents = 100;

    [Fact]
    public void Reconnect_storms_with_long_filters_do_not_grow_the_expiry_queue()
    {
        var h = new AllocatorHarness();
        h.AddFramework("f1", "web");
        for (var i = 0; i < Agents; i++)
        {
            h.AddAgent($"a{i}", "cpus:2;mem:1024");
        }

        DeclineAll(h, h.Cycle(), Agents);
        for (var storm = 0; storm < 20; storm++)
        {
            for (var i = 0; i < Agents; i++)
            {
                h.Allocator.RemoveAgent($"a{i}");
            }

            for (var i = 0; i < Agents; i++)
            {
                h.AddAgent($"a{i}", "cpus:2;mem:1024");
            }

            // The new incarnations carry no filter: all are offered again, and declined for an hour.
            DeclineAll(h, h.Cycle(), Agents);
            Assert.InRange(h.Allocator.ScheduledFilterExpiries, Agents, (Agents * 4 / 3) + 64);
        }

        Assert.Equal(Agents, h.Allocator.GetSnapshot().ActiveFilters);
        h.Time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(Agents, h.Allocator.Allocate().Count);
        Assert.Equal(0, h.Allocator.ScheduledFilterExpiries);
    }

    [Fact]
    public void Filters_of_remaining_agents_survive_a_compaction_and_still_expire()
    {
        var h = new AllocatorHarness();
        h.AddFramework("f1", "web");
        for (var i = 0; i < Agents; i++)
        {
            h.AddAgent($"a{i}", "cpus:2;mem:1024");
        }

        DeclineAll(h, h.Cycle(), Agents);
        // Removing 80 of 100 filtered agents makes stale entries dominate: the queue compacts.
        for (var i = 0; i < 80; i++)
        {
            h.Allocator.RemoveAgent($"a{i}");
        }

        Assert.True(h.Allocator.ScheduledFilterExpiries < Agents, $"{h.Allocator.ScheduledFilterExpiries} entries left after removing 80 of {Agents} agents");
        Assert.Empty(h.Cycle());
        h.Time.Advance(TimeSpan.FromMinutes(59));
        Assert.Empty(h.Allocator.Allocate());
        h.Time.Advance(TimeSpan.FromMinutes(1));
        var again = h.Allocator.Allocate();
        Assert.Equal(20, again.Count);
        Assert.All(again, g => Assert.True(int.Parse(g.AgentId[1..], System.Globalization.CultureInfo.InvariantCulture) >= 80, g.AgentId));
        Assert.Equal(0, h.Allocator.ScheduledFilterExpiries);
    }

    private static void DeclineAll(AllocatorHarness h, IReadOnlyList<OfferGrant> grants, int expected)
    {
        Assert.Equal(expected, grants.Count);
        foreach (var g in grants)
        {
            h.Decline(g, refuseSeconds: 3600);
        }
    }
}
