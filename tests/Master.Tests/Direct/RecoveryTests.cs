using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Xunit;

namespace Scheduler.Master.Tests.Direct;

/// <summary>After a failover the master does not know the tasks of agents that have not
/// re-registered yet: it must not answer for them as if they did not exist.</summary>
public sealed class RecoveryTests
{
    [Fact]
    public async Task A_kill_of_a_task_on_an_agent_not_back_yet_gets_no_answer_until_the_agent_returns()
    {
        await using var master = await DirectMaster.StartAsync();
        var agent = new DirectAgent(master, Res.Of(2, 512));
        await agent.RegisterAsync();
        var fw = DirectFramework.For(master);
        await fw.SubscribeAsync();
        await master.AllocateAsync();
        fw.Drain();
        var offer = Assert.Single(fw.Offers.Values);
        await fw.AcceptAsync([offer.Id], [DirectFramework.Task("t1", offer, Res.Of(1, 64))]);
        await agent.ProcessAsync();
        await agent.SendStatusAsync(fw.Id, "t1", TaskState.TaskRunning);
        fw.Drain();
        await fw.AcknowledgeAllAsync();
        await agent.ProcessAsync();
        Assert.Empty(agent.Unacked);

        await master.FailoverAsync();
        await fw.SubscribeAsync();
        fw.Latest.Clear();
        await fw.KillAsync("t1");
        Assert.DoesNotContain("t1", fw.Latest.Keys); // not TASK_UNKNOWN: t1 may well still run

        await agent.RegisterAsync();
        await fw.KillAsync("t1");
        await agent.ProcessAsync(); // the agent kills it and reports TASK_KILLED
        fw.Drain();
        Assert.Equal(TaskState.TaskKilled, fw.Latest["t1"].State);
    }

    [Fact]
    public async Task A_kill_of_a_task_no_agent_can_hold_is_answered_unknown()
    {
        await using var master = await DirectMaster.StartAsync();
        await new DirectAgent(master, Res.Of(2, 512)).RegisterAsync();
        var fw = DirectFramework.For(master);
        await fw.SubscribeAsync();
        await fw.KillAsync("ghost");
        Assert.Equal(TaskState.TaskUnknown, fw.Latest["ghost"].State);
    }
}
