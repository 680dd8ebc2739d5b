using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Scheduler.Protocol;
using Grpc.Core;
using Xunit;
using TaskStatus = Sched.V1.TaskStatus;
using Scheduler.Channels;

namespace Scheduler.Master.Tests;

/// <summary>Teardown, UpdateFramework, Message, batched Acknowledge, agent usage.</summary>
public sealed class FrameworkCallsTests
{
    [Fact]
    public async Task Teardown_kills_tasks_closes_the_stream_and_forgets_the_framework()
    {
        await using var cluster = await Cluster.StartAsync();
        var agent = await cluster.AddAgentAsync();
        agent.AutoFinish = false;
        var fw = await cluster.AddFrameworkAsync();
        var offer = await fw.NextOfferAsync();
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("t1", offer, Res.Of(1, 100))]);
        await fw.AckUntilAsync("t1", TaskState.TaskRunning);

        await cluster.Master.Channel.AsyncUnaryCall(SchedulerMethods.Teardown, new TeardownRequest { FrameworkId = fw.FrameworkId, StreamId = fw.StreamId }).ResponseAsync;
        var shutdown = await agent.Messages.TakeAsync(m => m.MessageCase == MasterMessage.MessageOneofCase.ShutdownFramework, what: "shutdown_framework");
        Assert.Equal(TaskStatus.Types.Reason.FrameworkRemoved, shutdown.ShutdownFramework.Reason);
        await Poll.UntilAsync(() => fw.Events.Ended is not null, TimeSpan.FromSeconds(10), "the stream to close");
        Assert.Empty(await cluster.Master.GetFrameworksAsync());
        await Poll.UntilAsync(async () => Res.Get((await cluster.Master.GetAgentsAsync()).Single().Allocated, "cpus") == 0, TimeSpan.FromSeconds(10), "resources freed");
        await cluster.Master.AssertAccountingAsync();
        await Poll.UntilAsync(() => agent.UnackedCount == 0, TimeSpan.FromSeconds(10), "the agent's kill update to be acknowledged by the master");
    }

    [Fact]
    public async Task Teardown_acknowledges_for_the_framework_the_updates_it_left_unacknowledged()
    {
        await using var cluster = await Cluster.StartAsync();
        // No re-sends during the test: only the master's own acknowledgement can drain the queue.
        var agent = await cluster.AddAgentAsync(resendInterval: TimeSpan.FromHours(1));
        agent.AutoFinish = false;
        var fw = await cluster.AddFrameworkAsync();
        var offer = await fw.NextOfferAsync();
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("t1", offer, Res.Of(1, 100))]);
        var starting = await fw.NextUpdateAsync("t1", TaskState.TaskStarting); // received, never acknowledged
        Assert.NotEmpty(starting.Uuid);

        await cluster.Master.Channel.AsyncUnaryCall(SchedulerMethods.Teardown, new TeardownRequest { FrameworkId = fw.FrameworkId, StreamId = fw.StreamId }).ResponseAsync;
        var acks = await agent.Messages.TakeAsync(m => m.MessageCase == MasterMessage.MessageOneofCase.Acks, what: "the master's acknowledgement for the removed framework");
        var ack = Assert.Single(acks.Acks.Acks);
        Assert.Equal(("t1", starting.Uuid, fw.FrameworkId), (ack.TaskId, ack.Uuid, ack.FrameworkId));
        await agent.Messages.TakeAsync(m => m.MessageCase == MasterMessage.MessageOneofCase.ShutdownFramework, what: "shutdown_framework after the acknowledgement");
        await Poll.UntilAsync(() => agent.UnackedCount == 0, TimeSpan.FromSeconds(10), "every update of the agent acknowledged, without a retry");
    }

    [Fact]
    public async Task UpdateFramework_moves_offers_to_the_new_role()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.AddAgentAsync();
        var fw = await cluster.AddFrameworkAsync();
        var offer = await fw.NextOfferAsync();
        Assert.Equal("default", offer.Role);
        var info = fw.Info.Clone();
        info.Roles.Clear();
        info.Roles.Add("eng/web");
        await cluster.Master.Channel.AsyncUnaryCall(SchedulerMethods.UpdateFramework, new UpdateFrameworkRequest { FrameworkId = fw.FrameworkId, StreamId = fw.StreamId, FrameworkInfo = info }).ResponseAsync;
        await fw.Events.TakeAsync(e => e.EventCase == Event.EventOneofCase.Rescind && e.Rescind.OfferId == offer.Id, what: "rescind of the old role's offer");
        var next = await fw.NextOfferAsync();
        Assert.Equal("eng/web", next.Role);
        Assert.Equal("eng/web", (await cluster.Master.GetFrameworksAsync()).Single().Info.Roles.Single());

        info.Roles.Add("eng/batch");
        var e = await Assert.ThrowsAsync<RpcException>(() => cluster.Master.Channel.AsyncUnaryCall(SchedulerMethods.UpdateFramework,
            new UpdateFrameworkRequest { FrameworkId = fw.FrameworkId, StreamId = fw.StreamId, FrameworkInfo = info }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task Message_reaches_the_agent_and_batched_acknowledgements_reach_it_too()
    {
        await using var cluster = await Cluster.StartAsync();
        var agent = await cluster.AddAgentAsync();
        var fw = await cluster.AddFrameworkAsync();
        var offer = await fw.NextOfferAsync();
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("a", offer, Res.Of(1, 100)), TestFramework.MockTask("b", offer, Res.Of(1, 100))]);
        var a = await fw.NextUpdateAsync("a", TaskState.TaskStarting);
        var b = await fw.NextUpdateAsync("b", TaskState.TaskStarting);
        var request = new AcknowledgeRequest { FrameworkId = fw.FrameworkId, StreamId = fw.StreamId };
        request.Items.Add(new AcknowledgeRequest.Types.Item { AgentId = a.AgentId, TaskId = a.TaskId, Uuid = a.Uuid });
        request.Items.Add(new AcknowledgeRequest.Types.Item { AgentId = b.AgentId, TaskId = b.TaskId, Uuid = b.Uuid });
        await cluster.Master.Channel.AsyncUnaryCall(SchedulerMethods.Acknowledge, request).ResponseAsync;
        var acks = await agent.Messages.TakeAsync(m => m.MessageCase == MasterMessage.MessageOneofCase.Acks && m.Acks.Acks.Count == 2, what: "both acks in one message");
        Assert.Equal(new[] { a.Uuid, b.Uuid }, acks.Acks.Acks.Select(x => x.Uuid));

        await cluster.Master.Channel.AsyncUnaryCall(SchedulerMethods.Message, new MessageRequest
        {
            FrameworkId = fw.FrameworkId,
            StreamId = fw.StreamId,
            AgentId = agent.AgentId,
            ExecutorId = "a",
            Data = Google.Protobuf.ByteString.CopyFromUtf8("hello"),
        }).ResponseAsync;
        var message = await agent.Messages.TakeAsync(m => m.MessageCase == MasterMessage.MessageOneofCase.FrameworkMessage, what: "framework message");
        Assert.Equal("hello", message.FrameworkMessage.Data.ToStringUtf8());
        Assert.Equal(fw.FrameworkId, message.FrameworkMessage.FrameworkId);
    }

    [Fact]
    public async Task Agent_usage_is_shown_by_GetAgents()
    {
        await using var cluster = await Cluster.StartAsync();
        var agent = await cluster.AddAgentAsync();
        await agent.WriteAsync(new AgentMessage { Usage = new AgentMessage.Types.Usage { Total = new ResourceStatistics { MemBytes = 12345, Processes = 3 } } });
        await Poll.UntilAsync(async () => (await cluster.Master.GetAgentsAsync()).Single().Usage?.MemBytes == 12345, TimeSpan.FromSeconds(10), "usage to be recorded");
    }
}
