using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Scheduler.Protocol;
using Grpc.Core;
using Xunit;
using TaskStatus = Sched.V1.TaskStatus;
using Scheduler.Channels;

namespace Scheduler.Master.Tests;

public sealed class FrameworkLifecycleTests
{
    [Theory]
    [InlineData("", "default", "name is required")]
    [InlineData("fw", null, "roles is empty")]
    [InlineData("fw", "eng//web", "empty segment")]
    [InlineData("fw", "eng/../web", "'..'")]
    [InlineData("fw", "eng web", "character")]
    [InlineData("fw", "/eng", "start or end")]
    public async Task Subscribe_with_bad_framework_info_is_invalid_argument(string name, string? role, string expected)
    {
        await using var master = await MasterFixture.StartAsync();
        var info = new FrameworkInfo { Name = name };
        if (role is not null)
        {
            info.Roles.Add(role);
        }
        var fw = new TestFramework(master.Channel, info);
        var e = await Assert.ThrowsAnyAsync<Exception>(() => fw.SubscribeAsync());
        var rpc = Assert.IsType<RpcException>(e.InnerException ?? e);
        Assert.Equal(StatusCode.InvalidArgument, rpc.StatusCode);
        Assert.Contains(expected, rpc.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Several_roles_need_multi_role_and_nested_roles_are_valid()
    {
        await using var master = await MasterFixture.StartAsync();
        var info = new FrameworkInfo { Name = "multi", Roles = { "eng/web", "eng/batch" } };
        var e = await Assert.ThrowsAnyAsync<Exception>(() => new TestFramework(master.Channel, info).SubscribeAsync());
        Assert.Contains("MULTI_ROLE", Assert.IsType<RpcException>(e.InnerException ?? e).Status.Detail, StringComparison.Ordinal);

        info.Capabilities.Add(FrameworkCapability.MultiRole);
        await using var fw = new TestFramework(master.Channel, info);
        var subscribed = await fw.SubscribeAsync();
        Assert.NotEmpty(subscribed.FrameworkId);
        Assert.NotEmpty(subscribed.StreamId);
        Assert.Equal(0.5, subscribed.HeartbeatIntervalSeconds);
        await fw.Events.TakeAsync(ev => ev.EventCase == Event.EventOneofCase.Heartbeat, what: "a heartbeat");
    }

    [Fact]
    public async Task New_subscription_replaces_the_old_stream_and_old_stream_id_is_refused()
    {
        await using var cluster = await Cluster.StartAsync();
        var fw = await cluster.AddFrameworkAsync();
        var oldStream = fw.StreamId;
        var oldEvents = fw.Events;
        await using var second = new TestFramework(cluster.Master.Channel, fw.Info);
        await second.SubscribeAsync();
        Assert.Equal(fw.FrameworkId, second.FrameworkId);
        Assert.NotEqual(oldStream, second.StreamId);
        await Poll.UntilAsync(() => oldEvents.Ended is not null, TimeSpan.FromSeconds(10), "the old stream to close");
        var e = await Assert.ThrowsAsync<RpcException>(() => fw.SuppressAsync());
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        await second.SuppressAsync();
    }

    [Fact]
    public async Task Decline_filter_is_honoured_until_revive()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.AddAgentAsync();
        var fw = await cluster.AddFrameworkAsync();
        var offer = await fw.NextOfferAsync();
        await fw.DeclineAsync(offer.Id, refuseSeconds: 60);
        Assert.True(await fw.Offers.NoneWithinAsync(_ => true, TimeSpan.FromMilliseconds(600)));
        await cluster.Master.AssertAccountingAsync();
        await fw.ReviveAsync();
        var again = await fw.NextOfferAsync();
        Assert.Equal(offer.AgentId, again.AgentId);
        Assert.Equal(4, Res.Get(again.Resources, "cpus"));
    }

    [Fact]
    public async Task Short_decline_filter_expires_by_itself()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.AddAgentAsync();
        var fw = await cluster.AddFrameworkAsync();
        var offer = await fw.NextOfferAsync();
        await fw.DeclineAsync(offer.Id, refuseSeconds: 0.3);
        await fw.NextOfferAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Suppressed_framework_gets_no_offers_until_revive()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.AddAgentAsync();
        var fw = await cluster.AddFrameworkAsync();
        var offer = await fw.NextOfferAsync();
        await fw.SuppressAsync();
        await fw.DeclineAsync(offer.Id, refuseSeconds: 0);
        Assert.True(await fw.Offers.NoneWithinAsync(_ => true, TimeSpan.FromMilliseconds(600)));
        var state = Assert.Single(await cluster.Master.GetFrameworksAsync());
        Assert.Contains("default", state.SuppressedRoles);
        await fw.ReviveAsync("default");
        await fw.NextOfferAsync();
    }

    [Fact]
    public async Task Disconnected_framework_is_torn_down_after_failover_timeout_and_its_tasks_killed()
    {
        await using var cluster = await Cluster.StartAsync();
        var agent = await cluster.AddAgentAsync();
        agent.AutoFinish = false;
        var fw = await cluster.AddFrameworkAsync(TestFramework.DefaultInfo(failoverSeconds: 1));
        var offer = await fw.NextOfferAsync();
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("t1", offer, Res.Of(1, 100))]);
        await fw.AckUntilAsync("t1", TaskState.TaskRunning);
        await fw.DisconnectAsync();

        var shutdown = await agent.Messages.TakeAsync(m => m.MessageCase == MasterMessage.MessageOneofCase.ShutdownFramework, TimeSpan.FromSeconds(10), "shutdown_framework");
        Assert.Equal(fw.FrameworkId, shutdown.ShutdownFramework.FrameworkId);
        Assert.Equal(TaskStatus.Types.Reason.FrameworkFailoverTimeout, shutdown.ShutdownFramework.Reason);
        Assert.Empty(await cluster.Master.GetFrameworksAsync());
        await Poll.UntilAsync(async () => Res.Get((await cluster.Master.GetAgentsAsync()).Single().Allocated, "cpus") == 0, TimeSpan.FromSeconds(10), "the task's resources to be freed");
        await cluster.Master.AssertAccountingAsync();
        // The agent's TASK_KILLED update for the removed framework is acknowledged by the master.
        await Poll.UntilAsync(() => agent.UnackedCount == 0, TimeSpan.FromSeconds(10), "the agent's queue to drain");

        var e = await Assert.ThrowsAnyAsync<Exception>(() => new TestFramework(cluster.Master.Channel, fw.Info).SubscribeAsync());
        Assert.Equal(StatusCode.NotFound, Assert.IsType<RpcException>(e.InnerException ?? e).StatusCode);
    }

    [Fact]
    public async Task Resubscribing_within_the_failover_timeout_keeps_tasks()
    {
        await using var cluster = await Cluster.StartAsync();
        var agent = await cluster.AddAgentAsync();
        agent.AutoFinish = false;
        var fw = await cluster.AddFrameworkAsync(TestFramework.DefaultInfo(failoverSeconds: 30));
        var offer = await fw.NextOfferAsync();
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("t1", offer, Res.Of(1, 100))]);
        await fw.AcknowledgeAsync(await fw.NextUpdateAsync("t1", TaskState.TaskStarting));
        await fw.AcknowledgeAsync(await fw.NextUpdateAsync("t1", TaskState.TaskRunning));
        await fw.DisconnectAsync();
        await Poll.UntilAsync(async () => !(await cluster.Master.GetFrameworksAsync()).Single().Connected, TimeSpan.FromSeconds(10), "the framework to show as disconnected");
        var state = (await cluster.Master.GetFrameworksAsync()).Single();
        Assert.True(state.FailoverDeadline > 0);

        await fw.SubscribeAsync();
        await fw.ReconcileAsync();
        var reconciled = await fw.NextUpdateAsync("t1", TaskState.TaskRunning);
        Assert.Equal(TaskStatus.Types.Reason.Reconciliation, reconciled.Reason);
        Assert.True((await cluster.Master.GetFrameworksAsync()).Single().Connected);
    }

    [Fact]
    public async Task Kill_of_unknown_task_answers_unknown_or_lost()
    {
        await using var cluster = await Cluster.StartAsync();
        var aware = await cluster.AddFrameworkAsync();
        await aware.KillAsync("ghost");
        var u = await aware.NextUpdateAsync("ghost", TaskState.TaskUnknown);
        Assert.Equal(TaskStatus.Types.Reason.TaskUnknown, u.Reason);

        var legacy = await cluster.AddFrameworkAsync(TestFramework.DefaultInfo("legacy", partitionAware: false));
        await legacy.KillAsync("ghost");
        await legacy.NextUpdateAsync("ghost", TaskState.TaskLost);
    }

    [Fact]
    public async Task Acknowledge_errors_are_specific()
    {
        await using var cluster = await Cluster.StartAsync();
        var agent = await cluster.AddAgentAsync();
        var fw = await cluster.AddFrameworkAsync();
        var ack = (string agentId, string taskId, string uuid) => cluster.Master.Channel.AsyncUnaryCall(SchedulerMethods.Acknowledge,
            new AcknowledgeRequest { FrameworkId = fw.FrameworkId, StreamId = fw.StreamId, AgentId = agentId, TaskId = taskId, Uuid = uuid }).ResponseAsync;
        Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() => ack(agent.AgentId, "t", ""))).StatusCode);
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(() => ack("agent-nope", "t", "u"))).StatusCode);
        // A task the master no longer tracks (e.g. pruned from the completed history) on a known
        // agent: the acknowledgement is passed on to the agent, which drops the update if it holds it.
        await ack(agent.AgentId, "t", "u");
    }
}
