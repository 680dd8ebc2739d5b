using System.Collections.Concurrent;
using Google.Protobuf;
using Sched.V1;
using Scheduler.Master.Registry;
using Scheduler.Master.Tests.Harness;
using Scheduler.Protocol;
using Grpc.Core;
using Xunit;

namespace Scheduler.Master.Tests;

/// <summary>Follower and deposed-leader behaviour, with the election driven by the test.</summary>
public sealed class LeadershipTests
{
    /// <summary>Registry keys whose commit completed (a write still queued when leadership ends is
    /// dropped, so a test that revokes must first wait for the writes it relies on).</summary>
    private readonly ConcurrentDictionary<string, bool> _committed = new(StringComparer.Ordinal);

    private async Task<(MasterFixture Master, Func<ElectionDouble> Election)> StartAsync()
    {
        ElectionDouble? election = null;
        var master = await MasterFixture.StartAsync(
            components: c =>
            {
                c.Election = (_, _, self) => election = new ElectionDouble(self);
                c.Registry = (_, options, _) => new ObservedStore(FileRegistryStore.Open(options.WorkDir), _committed);
            },
            waitForLeadership: false);
        return (master, () => election!);
    }

    private sealed class ObservedStore(IRegistryStore inner, ConcurrentDictionary<string, bool> committed) : IRegistryStore
    {
        public Task<IReadOnlyDictionary<string, ByteString>> LoadAsync(CancellationToken cancellationToken) => inner.LoadAsync(cancellationToken);

        public async Task CommitAsync(IReadOnlyList<RegistryWrite> writes, CancellationToken cancellationToken)
        {
            await inner.CommitAsync(writes, cancellationToken);
            foreach (var w in writes)
            {
                committed[w.Key] = true;
            }
        }

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    private static void AssertNotLeader(RpcException e, string expectedLeader)
    {
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.Equal(expectedLeader, e.Trailers.GetValue(MetadataKeys.Leader) ?? "");
        Assert.Contains("not the leader", e.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Follower_answers_unavailable_with_the_leader_hint_except_health_and_leader()
    {
        var (master, election) = await StartAsync();
        await using var scope = master;
        await Poll.UntilAsync(() => election.Invoke() is not null, TimeSpan.FromSeconds(10), "the election to be created");
        election().SetOtherLeader("10.1.2.3:5050");

        AssertNotLeader(await Assert.ThrowsAsync<RpcException>(() => master.Operator(OperatorMethods.GetState, new GetStateRequest())), "10.1.2.3:5050");
        var fw = new TestFramework(master.Channel, TestFramework.DefaultInfo());
        var e = await Assert.ThrowsAnyAsync<Exception>(() => fw.SubscribeAsync());
        AssertNotLeader(Assert.IsType<RpcException>(e.InnerException ?? e), "10.1.2.3:5050");
        await using var agent = new TestAgentLink(master.Channel, Res.Of(1, 128));
        var ae = await Assert.ThrowsAnyAsync<Exception>(() => agent.ConnectAsync());
        AssertNotLeader(Assert.IsType<RpcException>(ae.InnerException ?? ae), "10.1.2.3:5050");

        var health = await master.Operator(OperatorMethods.GetHealth, new GetHealthRequest());
        Assert.Equal("follower", health.Role);
        var leader = await master.Operator(OperatorMethods.GetLeader, new GetLeaderRequest());
        Assert.False(leader.IsSelf);
        Assert.Equal("10.1.2.3:5050", leader.Leader.Address);
    }

    [Fact]
    public async Task Lost_leadership_closes_every_stream_and_a_new_term_rebuilds_from_the_registry()
    {
        var (master, election) = await StartAsync();
        await using var scope = master;
        await Poll.UntilAsync(() => election.Invoke() is not null, TimeSpan.FromSeconds(10), "the election to be created");
        election().Grant();
        await Poll.UntilAsync(async () => (await master.Operator(OperatorMethods.GetHealth, new GetHealthRequest())).Role == "leader", TimeSpan.FromSeconds(10), "leadership");

        await using var agent = new TestAgentLink(master.Channel, Res.Of(2, 1024));
        await agent.ConnectAsync();
        await using var fw = new TestFramework(master.Channel, TestFramework.DefaultInfo(failoverSeconds: 60));
        await fw.SubscribeAsync();
        await fw.NextOfferAsync();
        var frameworkEvents = fw.Events;
        var agentMessages = agent.Messages;
        await Poll.UntilAsync(() => _committed.ContainsKey(RegistryRecords.FrameworkKey(fw.FrameworkId)), TimeSpan.FromSeconds(10), "the framework to be in the registry");

        election().Revoke();
        await Poll.UntilAsync(() => frameworkEvents.Ended is not null && agentMessages.Ended is not null, TimeSpan.FromSeconds(10), "streams to close");
        Assert.Equal(StatusCode.Unavailable, Assert.IsType<RpcException>(frameworkEvents.Ended).StatusCode);
        Assert.Equal(StatusCode.Unavailable, Assert.IsType<RpcException>(agentMessages.Ended).StatusCode);
        AssertNotLeader(await Assert.ThrowsAsync<RpcException>(() => fw.SuppressAsync()), "");

        // Next term: the framework is rebuilt from the registry, disconnected; the agent comes back.
        election().Grant();
        await Poll.UntilAsync(async () =>
        {
            try
            {
                return (await master.GetFrameworksAsync()).Count == 1;
            }
            catch (RpcException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(10), "the new term to serve");
        var state = Assert.Single(await master.GetFrameworksAsync());
        Assert.Equal(fw.FrameworkId, state.Info.Id);
        Assert.False(state.Connected);
        await agent.ConnectAsync();
        await fw.SubscribeAsync();
        var offer = await fw.NextOfferAsync();
        Assert.Equal(agent.AgentId, offer.AgentId);
        Assert.True(offer.Id.Contains("-2-", StringComparison.Ordinal), offer.Id);
        await master.AssertAccountingAsync();
    }
}
