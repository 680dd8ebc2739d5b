using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Scheduler.Protocol;
using Xunit;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Tests;

/// <summary>Reconciliation never answers TASK_UNKNOWN for a task that may still run (a framework
/// trusting the answer would launch it twice), and implicit reconciliation reports ended tasks
/// whose update is not acknowledged. Failovers here are restarts on the same registry (the same
/// recovery path as an etcd failover).</summary>
public sealed class ReconciliationTests : IDisposable
{
    private readonly string _workDir = Directory.CreateTempSubdirectory("sched-master-reconcile-").FullName;

    public void Dispose() => Directory.Delete(_workDir, recursive: true);

    [Fact]
    public async Task Explicit_reconciliation_answers_nothing_while_the_agent_may_re_register_then_unreachable_never_unknown()
    {
        string taskAgentId, idleAgentId;
        FrameworkInfo info;
        await using (var master = await MasterFixture.StartAsync(workDir: _workDir))
        {
            await using var taskAgent = new TestAgentLink(master.Channel, Res.Of(4, 4096), "runs-t1") { AutoFinish = false };
            await using var idleAgent = new TestAgentLink(master.Channel, Res.Of(2, 2048), "idle");
            await taskAgent.ConnectAsync();
            await idleAgent.ConnectAsync();
            await using var fw = new TestFramework(master.Channel, TestFramework.DefaultInfo(failoverSeconds: 600));
            await fw.SubscribeAsync();
            var offer = await fw.NextOfferAsync(match: o => o.AgentId == taskAgent.AgentId);
            await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("t1", offer, Res.Of(1, 512))]);
            await fw.AckUntilAsync("t1", TaskState.TaskRunning);
            taskAgentId = taskAgent.AgentId;
            idleAgentId = idleAgent.AgentId;
            info = fw.Info.Clone();
        }

        // A new term: the agent running t1 has not re-registered yet, the idle one has.
        await using (var recovering = await MasterFixture.StartAsync(o => o.AgentReregisterTimeout = TimeSpan.FromSeconds(120), _workDir))
        {
            await using var idle = new TestAgentLink(recovering.Channel, Res.Of(2, 2048), "idle");
            idle.Info.Id = idleAgentId;
            await idle.ConnectAsync();
            await using var fw = new TestFramework(recovering.Channel, info);
            await fw.SubscribeAsync();
            Assert.Equal("recovering", (await recovering.Operator(OperatorMethods.GetHealth, new GetHealthRequest())).Role);
            await fw.ReconcileAsync(("t1", taskAgentId), ("t2", idleAgentId), ("t3", "agent-never-registered"));

            // Answers go out in query order: once t2's and t3's are in, t1 had none.
            var t2 = await fw.NextUpdateAsync("t2", TaskState.TaskUnknown);
            var t3 = await fw.NextUpdateAsync("t3", TaskState.TaskUnknown);
            Assert.Equal(TaskStatus.Types.Reason.Reconciliation, t2.Reason);
            Assert.Contains("does not have task", t2.Message, StringComparison.Ordinal);
            Assert.Contains("not known", t3.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(fw.Events.Snapshot(), e => e.EventCase == Event.EventOneofCase.Update && e.Update.Status.TaskId == "t1");
            Assert.Equal("recovering", (await recovering.Operator(OperatorMethods.GetHealth, new GetHealthRequest())).Role);

            // Without an agent id the task could be on the missing agent: no answer either.
            await fw.ReconcileAsync(("t1", ""), ("t4", idleAgentId));
            await fw.NextUpdateAsync("t4", TaskState.TaskUnknown);
            Assert.DoesNotContain(fw.Events.Snapshot(), e => e.EventCase == Event.EventOneofCase.Update && e.Update.Status.TaskId == "t1");
        }

        // Another term whose re-registration window closes without the agent: it is unreachable,
        // and its task may still run.
        await using var after = await MasterFixture.StartAsync(o => o.AgentReregisterTimeout = TimeSpan.FromMilliseconds(300), _workDir);
        await using var again = new TestFramework(after.Channel, info);
        await again.SubscribeAsync();
        await Poll.UntilAsync(async () => (await after.Operator(OperatorMethods.GetHealth, new GetHealthRequest())).Role == "standalone",
            TimeSpan.FromSeconds(10), "the re-registration window to close");
        await again.ReconcileAsync(("t1", taskAgentId));
        var unreachable = await again.NextUpdateAsync(s => s.TaskId == "t1", what: "an answer for t1");
        Assert.Equal(TaskState.TaskUnreachable, unreachable.State);
        Assert.Equal(TaskStatus.Types.Reason.Reconciliation, unreachable.Reason);
        Assert.Contains("may still be running", unreachable.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Implicit_reconciliation_reports_ended_tasks_until_their_update_is_acknowledged()
    {
        await using var cluster = await Cluster.StartAsync();
        // No re-sends: a re-sent update arriving after the acknowledgement would be forwarded
        // (and await acknowledgement) again.
        var agent = await cluster.AddAgentAsync(resendInterval: TimeSpan.FromMinutes(5));
        agent.AutoFinish = false;
        var fw = await cluster.AddFrameworkAsync();
        var offer = await fw.NextOfferAsync();
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("ends", offer, Res.Of(1, 128)), TestFramework.MockTask("runs", offer, Res.Of(1, 128))]);
        await fw.AckUntilAsync("ends", TaskState.TaskRunning);
        await fw.AckUntilAsync("runs", TaskState.TaskRunning);
        await agent.SendStatusAsync(fw.FrameworkId, "ends", TaskState.TaskFinished);
        var finished = await fw.NextUpdateAsync("ends", TaskState.TaskFinished);

        // Not acknowledged yet: the implicit answer includes it, in its terminal state.
        await fw.ReconcileAsync();
        var reported = await fw.NextUpdateAsync(s => s.TaskId == "ends" && s.Reason == TaskStatus.Types.Reason.Reconciliation, what: "the reconciled ended task");
        Assert.Equal(TaskState.TaskFinished, reported.State);
        Assert.Equal("", reported.Uuid);
        await fw.NextUpdateAsync(s => s.TaskId == "runs" && s.Reason == TaskStatus.Types.Reason.Reconciliation, what: "the reconciled running task");

        // Acknowledged: no longer reported. Answers go out in call order, so the answer to a
        // later explicit query marks the end of the implicit reply.
        await fw.AcknowledgeAsync(finished);
        await Poll.UntilAsync(() => agent.UnackedCount == 0, TimeSpan.FromSeconds(10), "the acknowledgement to reach the agent");
        await fw.ReconcileAsync();
        await fw.ReconcileAsync(("sentinel", agent.AgentId));
        await fw.NextUpdateAsync("sentinel", TaskState.TaskUnknown);
        Assert.Single(fw.Events.Snapshot(), e => e.EventCase == Event.EventOneofCase.Update && e.Update.Status.TaskId == "ends" && e.Update.Status.Reason == TaskStatus.Types.Reason.Reconciliation);
    }

    [Fact]
    public async Task A_task_on_an_agent_the_registry_marks_gone_reconciles_as_gone()
    {
        string agentId;
        FrameworkInfo info;
        await using (var master = await MasterFixture.StartAsync(workDir: _workDir))
        {
            await using var agent = new TestAgentLink(master.Channel, Res.Of(4, 4096)) { AutoFinish = false };
            await agent.ConnectAsync();
            await using var fw = new TestFramework(master.Channel, TestFramework.DefaultInfo(failoverSeconds: 600));
            await fw.SubscribeAsync();
            var offer = await fw.NextOfferAsync();
            await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("t1", offer, Res.Of(1, 512))]);
            await fw.AckUntilAsync("t1", TaskState.TaskRunning);
            agentId = agent.AgentId;
            info = fw.Info.Clone();
        }

        // Between the terms the agent is recorded as gone (as an operator's removal would).
        await using (var store = Scheduler.Master.Registry.FileRegistryStore.Open(_workDir))
        {
            var records = await store.LoadAsync(CancellationToken.None);
            var record = AgentRecord.Parser.ParseFrom(records[Scheduler.Master.Registry.RegistryRecords.AgentKey(agentId)]);
            record.State = AgentRecord.Types.State.Gone;
            await store.CommitAsync([Scheduler.Master.Registry.RegistryRecords.PutAgent(record)], CancellationToken.None);
        }

        await using var restarted = await MasterFixture.StartAsync(workDir: _workDir);
        await using var again = new TestFramework(restarted.Channel, info);
        await again.SubscribeAsync();
        await again.ReconcileAsync(("t1", agentId));
        var gone = await again.NextUpdateAsync(s => s.TaskId == "t1", what: "an answer for t1");
        Assert.Equal(TaskState.TaskGone, gone.State);
        Assert.Contains("is gone", gone.Message, StringComparison.Ordinal);
    }
}
