using Google.Protobuf;
using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Scheduler.Protocol;
using Xunit;
using Scheduler.Channels;

namespace Scheduler.Master.Tests;

/// <summary>Batched events stay within the message limit. One allocation cycle's offers to a
/// framework leave in events under a quarter of the message limit: one event with all of them would exceed the limit, fail to send, and end the
/// framework's stream (here a 64 KiB limit and 40 agents with about 3 KiB of attributes each: the
/// shape of tens of thousands of agents against the default 4 MiB). The operator stream's opening
/// snapshot is cut the same way.</summary>
public sealed class OfferEventSizeTests
{
    private const int Limit = 64 * 1024;

    [Fact]
    public async Task Offers_of_one_cycle_are_split_into_events_under_the_size_bound_and_all_arrive()
    {
        await using var cluster = await Cluster.StartAsync(o => o.MaxMessageSize = Limit);
        var agents = new List<TestAgentLink>();
        try
        {
            await ConnectLargeAgentsAsync(cluster, agents);

            // Subscribing after every agent is in: the first cycle offers all 40 at once.
            var fw = await cluster.AddFrameworkAsync();
            var expected = agents.Select(a => a.AgentId).ToHashSet(StringComparer.Ordinal);
            await Poll.UntilAsync(() => expected.IsSubsetOf(fw.Offers.Snapshot().Select(o => o.AgentId)), TimeSpan.FromSeconds(20),
                () => $"offers of all 40 agents (got {fw.Offers.Snapshot().Count}; stream ended: {fw.Events.Ended?.Message ?? "no"})");
            Assert.Null(fw.Events.Ended);
            var events = fw.Events.Snapshot().Where(e => e.EventCase == Event.EventOneofCase.Offers).ToList();
            Assert.True(events.Count > 1, "the offers should have needed several events");
            Assert.All(events, e => Assert.True(e.CalculateSize() <= Limit / 4, $"an offers event of {e.CalculateSize()} bytes exceeds the bound of {Limit / 4}"));
        }
        finally
        {
            foreach (var agent in agents)
            {
                await agent.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task An_operator_snapshot_over_the_bound_arrives_in_pieces_with_every_agent()
    {
        await using var cluster = await Cluster.StartAsync(o => o.MaxMessageSize = Limit);
        var agents = new List<TestAgentLink>();
        try
        {
            await ConnectLargeAgentsAsync(cluster, agents);

            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            using var call = cluster.Master.Channel.AsyncServerStreamingCall(OperatorMethods.Subscribe, new OperatorSubscribeRequest(), new Grpc.Core.CallOptions(cancellationToken: cts.Token));
            Assert.True(await call.ResponseStream.MoveNext(cts.Token));
            var first = call.ResponseStream.Current;
            Assert.Equal(OperatorEvent.EventOneofCase.Subscribed, first.EventCase);
            Assert.True(first.CalculateSize() <= Limit / 4, $"the snapshot event is {first.CalculateSize()} bytes, over the bound of {Limit / 4}");
            var seen = first.Subscribed.Agents.Select(a => a.Info.Id).ToHashSet(StringComparer.Ordinal);
            var expected = agents.Select(a => a.AgentId).ToHashSet(StringComparer.Ordinal);
            while (!expected.IsSubsetOf(seen) && await call.ResponseStream.MoveNext(cts.Token))
            {
                var e = call.ResponseStream.Current;
                Assert.True(e.CalculateSize() <= Limit, $"an event of {e.CalculateSize()} bytes exceeds the limit");
                if (e.EventCase == OperatorEvent.EventOneofCase.AgentAdded)
                {
                    seen.Add(e.AgentAdded.Agent.Info.Id);
                }
            }
            Assert.Superset(expected, seen);
        }
        finally
        {
            foreach (var agent in agents)
            {
                await agent.DisposeAsync();
            }
        }
    }

    /// <summary>Connects 40 agents, each with about 3 KiB of attributes, into <paramref name="agents"/>
    /// (which the caller disposes, also when a connection fails).</summary>
    internal static async Task ConnectLargeAgentsAsync(Cluster cluster, List<TestAgentLink> agents)
    {
        for (var i = 0; i < 40; i++)
        {
            var agent = new TestAgentLink(cluster.Master.Channel, Res.Of(2, 1024), $"host-{i}");
            agent.Info.Attributes.Add(new Sched.V1.Attribute { Name = "inventory", Text = new string((char)('a' + i % 26), 3000) });
            agents.Add(agent);
            await agent.ConnectAsync();
        }
    }
}
