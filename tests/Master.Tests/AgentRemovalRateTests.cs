using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Xunit;

namespace Scheduler.Master.Tests;

/// <summary>The agent removal rate limit spaces out the agents the agent timeout marks
/// unreachable, so a partition silencing many agents at once does not cost every task at once.</summary>
public sealed class AgentRemovalRateTests
{
    [Fact]
    public async Task Agents_silent_together_are_marked_unreachable_one_per_rate_interval()
    {
        await using var cluster = await Cluster.StartAsync(o =>
        {
            o.AgentTimeout = TimeSpan.FromSeconds(1);
            o.AgentRemovalRateLimit = new AgentRemovalRate(1, TimeSpan.FromSeconds(3));
        });
        var agents = new List<TestAgentLink>();
        for (var i = 0; i < 3; i++)
        {
            agents.Add(await cluster.AddAgentAsync(hostname: $"partitioned-{i}"));
        }
        await Task.WhenAll(agents.Select(a => a.DisconnectAsync()));

        async Task<int> UnreachableAsync() => (await cluster.Master.GetAgentsAsync()).Count(a => a.Status == AgentStatus.AgentUnreachable);
        await Poll.UntilAsync(async () => await UnreachableAsync() >= 1, TimeSpan.FromSeconds(10), "the first silent agent to be marked unreachable");
        var sinceFirst = System.Diagnostics.Stopwatch.StartNew();
        await Poll.UntilAsync(async () => await UnreachableAsync() == 3, TimeSpan.FromSeconds(20), "every silent agent to be marked unreachable in turn");

        // Two more removals at one per 3 s: 6 s after the first (less the time it took to see the
        // first). Without the limit all three go within the agents' heartbeat spread (< 1 s).
        Assert.True(sinceFirst.Elapsed >= TimeSpan.FromSeconds(4), $"all three were unreachable {sinceFirst.Elapsed.TotalSeconds:0.0} s after the first: the removals were not spaced");
    }

    [Theory]
    [InlineData("1/20mins", 1, 1200)]
    [InlineData("10/1m", 10, 60)]
    [InlineData("5/s", 5, 1)]
    [InlineData("2/1.5h", 2, 5400)]
    public void Rates_parse_as_count_per_duration(string text, int count, double seconds)
    {
        Assert.True(AgentRemovalRate.TryParse(text, out var rate, out var problem), problem);
        Assert.Equal(count, rate.Count);
        Assert.Equal(TimeSpan.FromSeconds(seconds), rate.Per);
    }

    [Theory]
    [InlineData("0/1m")]
    [InlineData("1/20 parsecs")]
    [InlineData("fast")]
    [InlineData("1/0m")]
    public void Bad_rates_are_refused_with_the_expected_form(string text)
    {
        Assert.False(AgentRemovalRate.TryParse(text, out _, out var problem));
        Assert.Contains("e.g.", problem, StringComparison.Ordinal);
    }
}
