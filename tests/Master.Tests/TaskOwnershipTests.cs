using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Xunit;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Tests;

/// <summary>An agent speaks only for the tasks it runs, and a re-registering agent keeps only the
/// tasks the master still has on it.</summary>
public sealed class TaskOwnershipTests
{
    private static async Task<(TestAgentLink Agent, TestFramework Fw)> RunningTaskAsync(Cluster cluster)
    {
        var agent = await cluster.AddAgentAsync(hostname: "runner");
        agent.AutoFinish = false;
        var fw = await cluster.AddFrameworkAsync();
        var offer = await fw.NextOfferAsync();
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("t1", offer, Res.Of(1, 256))]);
        await fw.AcknowledgeAsync(await fw.NextUpdateAsync("t1", TaskState.TaskStarting));
        await fw.AcknowledgeAsync(await fw.NextUpdateAsync("t1", TaskState.TaskRunning));
        await Poll.UntilAsync(() => agent.UnackedCount == 0, TimeSpan.FromSeconds(10), "acks to reach the agent");
        return (agent, fw);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task An_update_from_an_agent_that_does_not_run_the_task_changes_nothing_and_is_not_forwarded(bool namesTheRealAgent)
    {
        await using var cluster = await Cluster.StartAsync();
        var (runner, fw) = await RunningTaskAsync(cluster);
        var other = await cluster.AddAgentAsync(hostname: "other");
        var forged = new TaskStatus
        {
            TaskId = "t1",
            FrameworkId = fw.FrameworkId,
            AgentId = namesTheRealAgent ? runner.AgentId : other.AgentId,
            State = TaskState.TaskFinished,
            Source = TaskStatus.Types.Source.Agent,
            Uuid = Guid.NewGuid().ToString(),
        };
        await other.SendUpdatesAsync([forged]);
        // The master answers the sender with an acknowledgement, so the update has been handled.
        await other.Messages.TakeAsync(m => m.MessageCase == MasterMessage.MessageOneofCase.Acks && m.Acks.Acks.Any(a => a.Uuid == forged.Uuid),
            what: "the master to acknowledge (and drop) the forged update");
        // A genuine update after it, from the runner: when the framework sees it, it would have seen the forged one first.
        await runner.SendStatusAsync(fw.FrameworkId, "t1", TaskState.TaskRunning);
        var next = await fw.NextUpdateAsync(s => s.TaskId == "t1", what: "the next update of t1");
        Assert.Equal((TaskState.TaskRunning, runner.AgentId), (next.State, next.AgentId));
        var task = Assert.Single(await cluster.Master.GetTasksAsync());
        Assert.Equal((TaskState.TaskRunning, runner.AgentId), (task.State, task.AgentId));
    }

    [Fact]
    public async Task An_agent_re_registering_with_a_task_the_master_does_not_know_is_told_to_kill_it_and_the_framework_hears_of_it()
    {
        await using var cluster = await Cluster.StartAsync();
        var (agent, fw) = await RunningTaskAsync(cluster);
        await agent.DisconnectAsync();
        // While disconnected the agent "gained" a task no master launched (a leftover from an old
        // run, or a buggy agent).
        agent.Tasks["ghost"] = new TaskRecord
        {
            TaskId = "ghost",
            FrameworkId = fw.FrameworkId,
            AgentId = agent.AgentId,
            State = TaskState.TaskRunning,
            Resources = { Res.Of(1, 128) },
            Role = "*",
        };
        await agent.ConnectAsync();
        var kill = await agent.Messages.TakeAsync(m => m.MessageCase == MasterMessage.MessageOneofCase.Kill && m.Kill.TaskId == "ghost",
            what: "the master to kill the task it does not know");
        Assert.Equal(TaskStatus.Types.Reason.TaskUnknown, kill.Kill.Reason);
        var killed = await fw.NextUpdateAsync("ghost", TaskState.TaskKilled);
        Assert.Equal(agent.AgentId, killed.AgentId);
        var tasks = await cluster.Master.GetTasksAsync();
        Assert.DoesNotContain(tasks, t => t.TaskId == "ghost" && t.State == TaskState.TaskRunning);
        Assert.Contains(tasks, t => t.TaskId == "t1" && t.State == TaskState.TaskRunning);
        await cluster.Master.AssertAccountingAsync();
    }
}
