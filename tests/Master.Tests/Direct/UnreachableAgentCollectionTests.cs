using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Xunit;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Tests.Direct;

/// <summary>Unreachable agents are forgotten by age and by count (the longest lost first), so
/// lost agents do not pile up in the registry and the master for ever. On virtual time, so the
/// default age limit of two weeks is tested as it is.</summary>
public sealed class UnreachableAgentCollectionTests
{
    [Fact]
    public async Task An_agent_unreachable_longer_than_the_age_limit_is_forgotten_and_its_task_reconciles_as_unknown()
    {
        await using var master = await DirectMaster.StartAsync();
        var agent = new DirectAgent(master, Res.Of(2, 256));
        await agent.RegisterAsync();
        var fw = DirectFramework.For(master);
        await fw.SubscribeAsync();
        await master.AllocateAsync();
        fw.Drain();
        var offer = Assert.Single(fw.Offers.Values);
        await fw.AcceptAsync([offer.Id], [DirectFramework.Task("t1", offer, Res.Of(1, 128))]);
        await agent.ProcessAsync();
        await agent.SendStatusAsync(fw.Id, "t1", TaskState.TaskRunning);

        await agent.DisconnectAsync();
        await master.AdvanceAsync(master.Options.AgentTimeout + TimeSpan.FromSeconds(1));
        fw.Drain();
        Assert.Equal(TaskState.TaskUnreachable, fw.Latest["t1"].State);

        await master.AdvanceAsync(master.Options.MaxUnreachableAgentAge - TimeSpan.FromMinutes(1));
        Assert.Single(await master.On(l => l.GetAgents().Agents.ToList()));
        await master.AdvanceAsync(TimeSpan.FromMinutes(2));
        Assert.Empty(await master.On(l => l.GetAgents().Agents.ToList()));
        Assert.Empty(await master.On(l => l.GetTasks(new GetTasksRequest()).Tasks.ToList()));
        Assert.DoesNotContain(master.Registry.Snapshot.Keys, k => k.Contains(agent.Id, StringComparison.Ordinal));

        await master.On(l => l.Reconcile(new ReconcileRequest { FrameworkId = fw.Id, StreamId = fw.StreamId, Tasks = { new ReconcileRequest.Types.Task { TaskId = "t1", AgentId = agent.Id } } }));
        fw.Drain();
        Assert.Equal(TaskState.TaskUnknown, fw.Latest["t1"].State);
        Assert.Equal(TaskStatus.Types.Reason.Reconciliation, fw.Latest["t1"].Reason);
    }

    [Fact]
    public async Task Beyond_the_count_limit_the_longest_unreachable_agent_is_forgotten_first()
    {
        await using var master = await DirectMaster.StartAsync(o => o.MaxUnreachableAgents = 1);
        var older = new DirectAgent(master, Res.Of(1, 128), "older");
        var newer = new DirectAgent(master, Res.Of(1, 128), "newer");
        await older.RegisterAsync();
        await newer.RegisterAsync();

        await older.DisconnectAsync();
        await master.AdvanceAsync(master.Options.AgentTimeout + TimeSpan.FromSeconds(1));
        var agents = await master.On(l => l.GetAgents().Agents.ToDictionary(a => a.Info.Id, a => a.Status));
        Assert.Equal(AgentStatus.AgentUnreachable, agents[older.Id]);

        await newer.DisconnectAsync();
        await master.AdvanceAsync(master.Options.AgentTimeout + TimeSpan.FromSeconds(2));
        var left = Assert.Single(await master.On(l => l.GetAgents().Agents.ToList()));
        Assert.Equal(newer.Id, left.Info.Id);
        Assert.Equal(AgentStatus.AgentUnreachable, left.Status);
    }
}
