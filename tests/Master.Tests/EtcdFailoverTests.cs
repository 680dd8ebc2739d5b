using Sched.V1;
using Scheduler.Etcd;
using Scheduler.Master.Tests.Harness;
using Scheduler.Protocol;
using Grpc.Core;
using Xunit;

namespace Scheduler.Master.Tests;

/// <summary>Two masters on a real etcd: one leads, the other redirects; when the leader stops,
/// the other takes over, rebuilding frameworks from the registry and tasks from the agent.</summary>
public sealed class EtcdFailoverTests : IAsyncLifetime
{
    private LocalEtcdCluster _etcd = null!;

    public async Task InitializeAsync() => _etcd = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 1 });

    public async Task DisposeAsync() => await _etcd.DisposeAsync();

    [Fact]
    public async Task Follower_redirects_and_takes_over_when_the_leader_stops()
    {
        await using var a = await MasterFixture.StartOnEtcdAsync(_etcd);
        await using var b = await MasterFixture.StartOnEtcdAsync(_etcd);
        var (leader, follower) = await MasterFixture.LeaderAndFollowerAsync(a, b);
        await Poll.UntilAsync(async () => (await follower.Operator(OperatorMethods.GetLeader, new GetLeaderRequest())).Leader?.Address == leader.Address,
            TimeSpan.FromSeconds(10), "the follower to observe the leader");

        var e = await Assert.ThrowsAsync<RpcException>(() => follower.Operator(OperatorMethods.GetState, new GetStateRequest()));
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.Equal(leader.Address, e.Trailers.GetValue(MetadataKeys.Leader));
        var who = await follower.Operator(OperatorMethods.GetLeader, new GetLeaderRequest());
        Assert.False(who.IsSelf);
        Assert.Equal(leader.Address, who.Leader.Address);

        // Work on the leader: an agent with a running task, a framework, a weight.
        var agent = new TestAgentLink(leader.Channel, Res.Of(4, 4096));
        await agent.ConnectAsync();
        agent.AutoFinish = false;
        var fw = new TestFramework(leader.Channel, TestFramework.DefaultInfo(failoverSeconds: 120));
        await fw.SubscribeAsync();
        var offer = await fw.NextOfferAsync();
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("t1", offer, Res.Of(1, 128))]);
        await fw.AckUntilAsync("t1", TaskState.TaskRunning);
        await Poll.UntilAsync(() => agent.UnackedCount == 0, TimeSpan.FromSeconds(10), "acks");
        await leader.Operator(OperatorMethods.UpdateWeights, new UpdateWeightsRequest { Weights = { new WeightInfo { Role = "default", Weight = 3 } } });
        var tasks = agent.Tasks.ToDictionary(p => p.Key, p => p.Value.Clone());
        var frameworks = agent.Frameworks.ToList();
        var agentId = agent.AgentId;
        await fw.DisposeAsync();
        await agent.DisposeAsync();

        await leader.StopAsync();
        await Poll.UntilAsync(async () => await follower.RoleAsync() is "leader" or "recovering", TimeSpan.FromSeconds(20), "the follower to take over");

        // The framework is known from etcd before anyone reconnects.
        await Poll.UntilAsync(async () =>
        {
            try
            {
                return (await follower.GetFrameworksAsync()).Count == 1;
            }
            catch (RpcException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(10), "the registry to be loaded");

        await using var agent2 = new TestAgentLink(follower.Channel, Res.Of(4, 4096));
        agent2.Info.Id = agentId;
        foreach (var (k, v) in tasks)
        {
            agent2.Tasks[k] = v;
        }
        agent2.Frameworks.AddRange(frameworks);
        Assert.Equal(agentId, (await agent2.ConnectAsync()).AgentId);
        await using var fw2 = new TestFramework(follower.Channel, fw.Info);
        await fw2.SubscribeAsync();
        await fw2.ReconcileAsync();
        await fw2.NextUpdateAsync("t1", TaskState.TaskRunning);
        await Poll.UntilAsync(async () => await follower.RoleAsync() == "leader", TimeSpan.FromSeconds(10), "recovery to finish");
        var roles = await follower.Operator(OperatorMethods.GetRoles, new GetRolesRequest());
        Assert.Equal(3, Assert.Single(roles.Roles, r => r.Name == "default").Weight);
        var next = await fw2.NextOfferAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(3, Res.Get(next.Resources, "cpus"));
        await follower.AssertAccountingAsync();
    }
}
