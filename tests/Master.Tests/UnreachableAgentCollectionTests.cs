using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Xunit;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Tests;

/// <summary>Unreachable agents are forgotten by age and by count (the longest lost first), so
/// lost agents do not pile up in the registry and the master for ever.</summary>
public sealed class UnreachableAgentCollectionTests
{
    [Fact]
    public async Task An_agent_unreachable_longer_than_the_age_limit_is_forgotten_and_its_task_reconciles_as_unknown()
    {
        await using var cluster = await Cluster.StartAsync(o =>
        {
            o.AgentTimeout = TimeSpan.FromSeconds(1);
            o.MaxUnreachableAgentAge = TimeSpan.FromSeconds(1);
        });
        var agent = await cluster.AddAgentAsync();
        agent.AutoFinish = false;
        var fw = await cluster.AddFrameworkAsync();
        var offer = await fw.NextOfferAsync();
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("t1", offer, Res.Of(1, 128))]);
        await fw.AckUntilAsync("t1", TaskState.TaskRunning);

        await agent.DisconnectAsync();
        await fw.NextUpdateAsync("t1", TaskState.TaskUnreachable, TimeSpan.FromSeconds(10));
        await Poll.UntilAsync(async () => (await cluster.Master.GetAgentsAsync()).Count == 0, TimeSpan.FromSeconds(10), "the unreachable agent to be forgotten");
        Assert.Empty(await cluster.Master.GetTasksAsync());

        await fw.ReconcileAsync(("t1", agent.AgentId));
        var answer = await fw.NextUpdateAsync(s => s.TaskId == "t1" && s.Reason == TaskStatus.Types.Reason.Reconciliation, what: "the reconciliation answer");
        Assert.Equal(TaskState.TaskUnknown, answer.State);
    }

    [Fact]
    public async Task Beyond_the_count_limit_the_longest_unreachable_agent_is_forgotten_first()
    {
        await using var cluster = await Cluster.StartAsync(o =>
        {
            o.AgentTimeout = TimeSpan.FromSeconds(1);
            o.MaxUnreachableAgents = 1;
        });
        var older = await cluster.AddAgentAsync(hostname: "older");
        var newer = await cluster.AddAgentAsync(hostname: "newer");

        await older.DisconnectAsync();
        await Poll.UntilAsync(async () => (await cluster.Master.GetAgentsAsync()).Any(a => a.Info.Id == older.AgentId && a.Status == AgentStatus.AgentUnreachable),
            TimeSpan.FromSeconds(10), "the first agent to become unreachable");
        await newer.DisconnectAsync();
        await Poll.UntilAsync(async () => (await cluster.Master.GetAgentsAsync()).All(a => a.Info.Id != older.AgentId),
            TimeSpan.FromSeconds(10), "the longest unreachable agent to be forgotten");
        var left = Assert.Single(await cluster.Master.GetAgentsAsync());
        Assert.Equal(newer.AgentId, left.Info.Id);
        Assert.Equal(AgentStatus.AgentUnreachable, left.Status);
    }
}
