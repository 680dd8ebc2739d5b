using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Scheduler.Protocol;
using Grpc.Core;
using Xunit;
using Scheduler.Channels;

namespace Scheduler.Master.Tests;

/// <summary>A master failover is not the framework's disconnect: every recovered framework gets
/// the re-registration grace to find the new leader, whatever its own failover timeout (here the
/// default, 0). Two masters on a real etcd.</summary>
public sealed class FrameworkFailoverGraceTests : IAsyncLifetime
{
    private LocalEtcdCluster _etcd = null!;

    public async Task InitializeAsync() => _etcd = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 1 });

    public async Task DisposeAsync() => await _etcd.DisposeAsync();

    [Fact]
    public async Task A_framework_with_failover_timeout_0_re_subscribes_to_the_new_leader_and_keeps_its_running_task()
    {
        static void Configure(MasterOptions o) => o.AgentReregisterTimeout = TimeSpan.FromSeconds(15);
        await using var a = await MasterFixture.StartOnEtcdAsync(_etcd, Configure);
        await using var b = await MasterFixture.StartOnEtcdAsync(_etcd, Configure);
        var (leader, follower) = await MasterFixture.LeaderAndFollowerAsync(a, b);

        // Channels of their own: the fixture's channel is disposed before its master stops, and a
        // framework with failover timeout 0 that disconnects first is rightly removed at once.
        using var agentChannel = GrpcChannels.ForAddress(leader.Address);
        using var frameworkChannel = GrpcChannels.ForAddress(leader.Address);
        var agent = new TestAgentLink(agentChannel, Res.Of(4, 4096)) { AutoFinish = false };
        await agent.ConnectAsync();
        var fw = new TestFramework(frameworkChannel, TestFramework.DefaultInfo(failoverSeconds: 0));
        await fw.SubscribeAsync();
        var offer = await fw.NextOfferAsync();
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("t1", offer, Res.Of(1, 128))]);
        await fw.AckUntilAsync("t1", TaskState.TaskRunning);
        await Poll.UntilAsync(() => agent.UnackedCount == 0, TimeSpan.FromSeconds(10), "the acknowledgement to reach the agent");
        var tasks = agent.Tasks.ToDictionary(p => p.Key, p => p.Value.Clone());
        var frameworks = agent.Frameworks.ToList();
        var agentId = agent.AgentId;
        var info = fw.Info.Clone();

        // The leader stops with the framework and the agent still connected to it.
        await leader.StopAsync();
        await fw.DisposeAsync();
        await agent.DisposeAsync();
        var seen = "nothing yet";
        await Poll.UntilAsync(async () =>
        {
            try
            {
                var role = await follower.RoleAsync();
                seen = $"role {role}";
                if (role is not ("leader" or "recovering"))
                {
                    return false;
                }
                var frameworks = await follower.GetFrameworksAsync();
                seen = $"role {role}, frameworks [{string.Join(", ", frameworks.Select(f => f.Info.Id))}]";
                return frameworks.Count == 1;
            }
            catch (RpcException e)
            {
                seen = e.Status.ToString();
                return false;
            }
        }, TimeSpan.FromSeconds(30), () => $"the follower to take over with the framework loaded (last seen: {seen})");

        await using var agent2 = new TestAgentLink(follower.Channel, Res.Of(4, 4096)) { AutoFinish = false };
        agent2.Info.Id = agentId;
        foreach (var (k, v) in tasks)
        {
            agent2.Tasks[k] = v;
        }
        agent2.Frameworks.AddRange(frameworks);
        await agent2.ConnectAsync();
        await using var fw2 = new TestFramework(follower.Channel, info);
        var subscribed = await fw2.SubscribeAsync();
        Assert.Equal(info.Id, subscribed.FrameworkId);
        await fw2.ReconcileAsync(("t1", agentId));
        await fw2.NextUpdateAsync("t1", TaskState.TaskRunning);

        // Past the grace the framework, connected, keeps the task; the agent was told to kill nothing.
        await Poll.UntilAsync(async () => await follower.RoleAsync() == "leader", TimeSpan.FromSeconds(30), "recovery to finish");
        var state = Assert.Single(await follower.GetFrameworksAsync());
        Assert.True(state.Connected);
        Assert.Equal(TaskState.TaskRunning, Assert.Single(await follower.GetTasksAsync()).State);
        Assert.DoesNotContain(agent2.Messages.Snapshot(), m => m.MessageCase is MasterMessage.MessageOneofCase.Kill or MasterMessage.MessageOneofCase.ShutdownFramework);
    }
}
