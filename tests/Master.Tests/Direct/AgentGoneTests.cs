using Sched.V1;
using Scheduler.Master.Registry;
using Scheduler.Master.Tests.Harness;
using Xunit;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Tests.Direct;

/// <summary>An operator marks an agent gone: its tasks end as gone at once and join their
/// framework's history, its resources leave the allocator, and its id is refused for good —
/// across a failover too. Driven directly, on virtual time.</summary>
public sealed class AgentGoneTests
{
    [Fact]
    public async Task A_gone_agents_tasks_end_at_once_and_the_agent_is_refused_even_after_a_failover()
    {
        await using var master = await DirectMaster.StartAsync();
        var gone = new DirectAgent(master, Res.Of(2, 256), "gone");
        var kept = new DirectAgent(master, Res.Of(2, 256), "kept");
        await gone.RegisterAsync();
        await kept.RegisterAsync();
        var fw = DirectFramework.For(master);
        await fw.SubscribeAsync();
        await master.AllocateAsync();
        fw.Drain();
        var onGone = fw.Offers.Values.Single(o => o.AgentId == gone.Id);
        var onKept = fw.Offers.Values.Single(o => o.AgentId == kept.Id);
        await fw.AcceptAsync([onGone.Id], [DirectFramework.Task("t-gone", onGone, Res.Of(1, 128))]);
        await fw.AcceptAsync([onKept.Id], [DirectFramework.Task("t-kept", onKept, Res.Of(1, 128))]);
        await gone.ProcessAsync();
        await kept.ProcessAsync();
        await gone.SendStatusAsync(fw.Id, "t-gone", TaskState.TaskRunning);
        await kept.SendStatusAsync(fw.Id, "t-kept", TaskState.TaskRunning);

        var (answer, durable) = await master.On(l => l.MarkAgentGone(new MarkAgentGoneRequest { AgentId = gone.Id }));
        await durable;

        Assert.Equal(1u, answer.TasksGone);
        fw.Drain();
        var status = fw.Latest["t-gone"];
        Assert.Equal(TaskState.TaskGoneByOperator, status.State); // the framework is partition-aware
        Assert.Equal(TaskStatus.Types.Reason.AgentRemoved, status.Reason);
        Assert.Equal(TaskState.TaskRunning, fw.Latest["t-kept"].State);
        var live = await master.On(l => l.GetTasks(new GetTasksRequest()).Tasks.Select(t => t.TaskId).ToList());
        Assert.Equal(["t-kept"], live);
        var ended = await master.On(l => l.GetTasks(new GetTasksRequest { IncludeCompleted = true, State = TaskState.TaskGoneByOperator }).Tasks.ToList());
        Assert.Equal(gone.Id, Assert.Single(ended).AgentId);
        Assert.Equal([kept.Id], await master.On(l => l.GetAgents().Agents.Select(a => a.Info.Id).ToList()));
        Assert.Contains(gone.Drain(), m => m.MessageCase == MasterMessage.MessageOneofCase.Shutdown);
        Assert.False(gone.Connected);
        Assert.Equal(AgentRecord.Types.State.Gone, AgentRecord.Parser.ParseFrom(master.Registry.Snapshot[RegistryRecords.AgentKey(gone.Id)]).State);

        // Marking it again is answered as done; reconciling a task on it says it is gone.
        var (again, _) = await master.On(l => l.MarkAgentGone(new MarkAgentGoneRequest { AgentId = gone.Id }));
        Assert.True(again.AlreadyGone);
        await master.On(l => l.Reconcile(new ReconcileRequest { FrameworkId = fw.Id, StreamId = fw.StreamId, Tasks = { new ReconcileRequest.Types.Task { TaskId = "t-other", AgentId = gone.Id } } }));
        fw.Drain();
        Assert.Equal(TaskState.TaskGone, fw.Latest["t-other"].State);

        // A new leader refuses the id too.
        await master.FailoverAsync();
        Assert.Null(await gone.RegisterAsync());
        Assert.NotNull(await kept.RegisterAsync());
        Assert.Equal([kept.Id], await master.On(l => l.GetAgents().Agents.Select(a => a.Info.Id).ToList()));
    }
}
