using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Scheduler.Protocol;
using Grpc.Core;
using Xunit;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Tests;

public sealed class AgentLifecycleTests
{
    private static async Task<(TestAgentLink Agent, TestFramework Fw)> RunningTaskAsync(Cluster cluster, FrameworkInfo? info = null)
    {
        var agent = await cluster.AddAgentAsync();
        agent.AutoFinish = false;
        var fw = await cluster.AddFrameworkAsync(info);
        var offer = await fw.NextOfferAsync();
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("t1", offer, Res.Of(1, 256))]);
        await fw.AcknowledgeAsync(await fw.NextUpdateAsync("t1", TaskState.TaskStarting));
        await fw.AcknowledgeAsync(await fw.NextUpdateAsync("t1", TaskState.TaskRunning));
        await Poll.UntilAsync(() => agent.UnackedCount == 0, TimeSpan.FromSeconds(10), "acks to reach the agent");
        return (agent, fw);
    }

    [Fact]
    public async Task Agent_timeout_makes_tasks_unreachable_and_re_registration_brings_them_back()
    {
        await using var cluster = await Cluster.StartAsync(o => o.AgentTimeout = TimeSpan.FromSeconds(1));
        var (agent, fw) = await RunningTaskAsync(cluster);
        await fw.ReviveAsync();
        var offer = await fw.NextOfferAsync();

        await agent.DisconnectAsync();
        var unreachable = await fw.NextUpdateAsync("t1", TaskState.TaskUnreachable, TimeSpan.FromSeconds(10));
        Assert.Equal(TaskStatus.Types.Reason.AgentDisconnected, unreachable.Reason);
        Assert.Equal(TaskStatus.Types.Source.Master, unreachable.Source);
        Assert.Contains(agent.AgentId, unreachable.Message, StringComparison.Ordinal);
        await fw.Events.TakeAsync(e => e.EventCase == Event.EventOneofCase.Rescind && e.Rescind.OfferId == offer.Id, what: "rescind of the offer on the lost agent");
        var state = (await cluster.Master.GetAgentsAsync()).Single();
        Assert.Equal(AgentStatus.AgentUnreachable, state.Status);
        Assert.Equal(TaskState.TaskUnreachable, (await cluster.Master.GetTasksAsync()).Single().State);

        var registered = await agent.ConnectAsync();
        Assert.Equal(agent.AgentId, registered.AgentId);
        var back = await fw.NextUpdateAsync("t1", TaskState.TaskRunning);
        Assert.Equal(TaskStatus.Types.Source.Master, back.Source);
        Assert.Equal(AgentStatus.AgentActive, (await cluster.Master.GetAgentsAsync()).Single().Status);
        Assert.Equal(TaskState.TaskRunning, (await cluster.Master.GetTasksAsync()).Single().State);
        Assert.Equal(1, Res.Get((await cluster.Master.GetAgentsAsync()).Single().Allocated, "cpus"));
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task Heartbeat_interval_and_timeout_grow_with_the_cluster_to_bound_heartbeats_per_second()
    {
        // At most 1 heartbeat/s over a base of 0.5 s / 1 s: one agent → 1 s (timeout 2 s), two → 2 s (timeout 4 s).
        await using var cluster = await Cluster.StartAsync(o =>
        {
            o.HeartbeatInterval = TimeSpan.FromMilliseconds(500);
            o.AgentTimeout = TimeSpan.FromSeconds(1);
            o.MaxAgentHeartbeatsPerSecond = 1;
        });
        var first = await cluster.AddAgentAsync(hostname: "first");
        Assert.Equal(1.0, first.Registered!.HeartbeatIntervalSeconds, 3);
        var second = await cluster.AddAgentAsync(hostname: "second");
        Assert.Equal(2.0, second.Registered!.HeartbeatIntervalSeconds, 3);
        // The first agent is told the new interval in its next ping.
        await first.Messages.TakeAsync(m => m.MessageCase == MasterMessage.MessageOneofCase.Ping && Math.Abs(m.Ping.HeartbeatIntervalSeconds - 2.0) < 1e-9,
            what: "a ping telling the first agent 2 s");

        // It heartbeats every 1 s (as registered), so it was last heard at most ~1 s before it goes
        // silent; at the unscaled 1 s timeout it would be unreachable within ~1 s, at 4 s not before ~3 s.
        var silent = System.Diagnostics.Stopwatch.StartNew();
        await first.DisconnectAsync();
        await Poll.UntilAsync(async () => (await cluster.Master.GetAgentsAsync()).Single(a => a.Info.Id == first.AgentId).Status == AgentStatus.AgentUnreachable,
            TimeSpan.FromSeconds(10), "the first agent to time out");
        Assert.True(silent.Elapsed >= TimeSpan.FromSeconds(2.5), $"unreachable after {silent.Elapsed.TotalSeconds:0.00} s of silence; the timeout should have grown to 4 s");
    }

    [Fact]
    public async Task Non_partition_aware_framework_sees_task_lost()
    {
        await using var cluster = await Cluster.StartAsync(o => o.AgentTimeout = TimeSpan.FromSeconds(1));
        var (agent, fw) = await RunningTaskAsync(cluster, TestFramework.DefaultInfo(partitionAware: false));
        await agent.DisconnectAsync();
        var lost = await fw.NextUpdateAsync("t1", TaskState.TaskLost, TimeSpan.FromSeconds(10));
        Assert.Equal(TaskStatus.Types.Reason.AgentDisconnected, lost.Reason);
    }

    [Fact]
    public async Task Update_whose_ack_is_lost_is_resent_and_delivered()
    {
        await using var cluster = await Cluster.StartAsync();
        var agent = await cluster.AddAgentAsync();
        var fw = await cluster.AddFrameworkAsync();
        var offer = await fw.NextOfferAsync();
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("t1", offer, Res.Of(1, 256))]);
        var first = await fw.NextUpdateAsync("t1", TaskState.TaskStarting);
        // No acknowledgement: the agent re-sends the same update, and the master forwards it again.
        var again = await fw.NextUpdateAsync("t1", TaskState.TaskStarting);
        Assert.Equal(first.Uuid, again.Uuid);
        Assert.True(agent.UnackedCount > 0);
        await fw.AcknowledgeAsync(again);
        await fw.AcknowledgeAsync(await fw.NextUpdateAsync("t1", TaskState.TaskRunning));
        await fw.AcknowledgeAsync(await fw.NextUpdateAsync("t1", TaskState.TaskFinished));
        await Poll.UntilAsync(() => agent.UnackedCount == 0, TimeSpan.FromSeconds(10), "every update to be acknowledged");
    }

    [Fact]
    public async Task Update_sent_while_the_framework_is_away_is_delivered_after_it_resubscribes()
    {
        await using var cluster = await Cluster.StartAsync();
        var (agent, fw) = await RunningTaskAsync(cluster);
        await fw.DisconnectAsync();
        await Poll.UntilAsync(async () => !(await cluster.Master.GetFrameworksAsync()).Single().Connected, TimeSpan.FromSeconds(10), "disconnect");
        await agent.SendStatusAsync(fw.FrameworkId, "t1", TaskState.TaskFinished);
        await fw.SubscribeAsync();
        var finished = await fw.NextUpdateAsync("t1", TaskState.TaskFinished);
        await fw.AcknowledgeAsync(finished);
        await Poll.UntilAsync(() => agent.UnackedCount == 0, TimeSpan.FromSeconds(10), "the re-sent update to be acknowledged");
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task Agent_with_bad_resources_is_refused_with_invalid_argument()
    {
        await using var master = await MasterFixture.StartAsync();
        await using var agent = new TestAgentLink(master.Channel, [Res.Scalar("cpus", -2)]);
        var e = await Assert.ThrowsAnyAsync<Exception>(() => agent.ConnectAsync());
        var rpc = Assert.IsType<RpcException>(e.InnerException ?? e);
        Assert.Equal(StatusCode.InvalidArgument, rpc.StatusCode);
        Assert.Contains("cpus", rpc.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Heartbeats_are_answered_with_pings()
    {
        await using var cluster = await Cluster.StartAsync();
        var agent = await cluster.AddAgentAsync();
        var ping = await agent.Messages.TakeAsync(m => m.MessageCase == MasterMessage.MessageOneofCase.Ping, what: "ping");
        Assert.True(ping.Ping.Sequence >= 1);
        Assert.True((await cluster.Master.GetAgentsAsync()).Single().LastHeartbeatTime > 0);
    }

    [Fact]
    public async Task Drained_agent_gets_no_offers_until_reactivated()
    {
        await using var cluster = await Cluster.StartAsync();
        var agent = await cluster.AddAgentAsync();
        var fw = await cluster.AddFrameworkAsync();
        var offer = await fw.NextOfferAsync();
        await cluster.Master.Operator(OperatorMethods.DrainAgent, new DrainAgentRequest { AgentId = agent.AgentId });
        await fw.Events.TakeAsync(e => e.EventCase == Event.EventOneofCase.Rescind && e.Rescind.OfferId == offer.Id, what: "rescind on drain");
        Assert.True(await fw.Offers.NoneWithinAsync(_ => true, TimeSpan.FromMilliseconds(500)));
        await cluster.Master.AssertAccountingAsync();
        await cluster.Master.Operator(OperatorMethods.ReactivateAgent, new ReactivateAgentRequest { AgentId = agent.AgentId });
        await fw.NextOfferAsync();
    }
}
