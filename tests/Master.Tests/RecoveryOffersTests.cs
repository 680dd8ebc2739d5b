using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Scheduler.Protocol;
using Xunit;

namespace Scheduler.Master.Tests;

/// <summary>After a failover (here: a restart on the same registry, the same recovery path as an
/// etcd failover) offers resume at once for the agents that are back, counting the tasks they
/// reported, while agents still missing are offered only once they return.</summary>
public sealed class RecoveryOffersTests : IDisposable
{
    private readonly string _workDir = Directory.CreateTempSubdirectory("sched-master-recovery-").FullName;

    public void Dispose() => Directory.Delete(_workDir, recursive: true);

    private static void Configure(MasterOptions o) => o.AgentReregisterTimeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Agents_that_are_back_are_offered_during_recovery_and_missing_ones_only_when_back()
    {
        TestAgentLink first, second;
        FrameworkInfo info;
        await using (var master = await MasterFixture.StartAsync(Configure, _workDir))
        {
            first = new TestAgentLink(master.Channel, Res.Of(4, 4096), "first") { AutoFinish = false };
            second = new TestAgentLink(master.Channel, Res.Of(2, 2048), "second");
            await first.ConnectAsync();
            await second.ConnectAsync();
            await using var fw = new TestFramework(master.Channel, TestFramework.DefaultInfo(failoverSeconds: 600));
            await fw.SubscribeAsync();
            var offer = await fw.NextOfferAsync(match: o => o.AgentId == first.AgentId);
            await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("held", offer, Res.Of(1, 512))]);
            await fw.AckUntilAsync("held", TaskState.TaskRunning);
            await Poll.UntilAsync(() => first.UnackedCount == 0, TimeSpan.FromSeconds(10), "the acknowledgement to reach the agent");
            info = fw.Info.Clone();
            await first.DisposeAsync();
            await second.DisposeAsync();
        }

        await using var restarted = await MasterFixture.StartAsync(Configure, _workDir);
        Assert.Equal("recovering", (await restarted.Operator(OperatorMethods.GetHealth, new GetHealthRequest())).Role);

        // Only the first agent comes back, with its running task; the framework re-subscribes.
        await using var back = new TestAgentLink(restarted.Channel, Res.Of(4, 4096), "first") { AutoFinish = false };
        back.Info.Id = first.AgentId;
        foreach (var (k, v) in first.Tasks)
        {
            back.Tasks[k] = v.Clone();
        }
        back.Frameworks.AddRange(first.Frameworks);
        await back.ConnectAsync();
        await using var again = new TestFramework(restarted.Channel, info);
        await again.SubscribeAsync();

        // An offer comes at once, during recovery, for what the returned agent has free.
        var early = await again.NextOfferAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(first.AgentId, early.AgentId);
        Assert.Equal(3, Res.Get(early.Resources, "cpus"));
        Assert.Equal("recovering", (await restarted.Operator(OperatorMethods.GetHealth, new GetHealthRequest())).Role);
        var missing = Assert.Single(await restarted.GetAgentsAsync(), a => a.Info.Id == second.AgentId);
        Assert.Equal(AgentStatus.AgentUnreachable, missing.Status);
        Assert.Empty(missing.Offered);
        Assert.DoesNotContain(again.Offers.Snapshot(), o => o.AgentId == second.AgentId);
        await restarted.AssertAccountingAsync();

        // The missing agent returns: it is offered too, and recovery is over.
        await using var late = new TestAgentLink(restarted.Channel, Res.Of(2, 2048), "second");
        late.Info.Id = second.AgentId;
        await late.ConnectAsync();
        var offer2 = await again.NextOfferAsync(TimeSpan.FromSeconds(5), o => o.AgentId == second.AgentId);
        Assert.Equal(2, Res.Get(offer2.Resources, "cpus"));
        await Poll.UntilAsync(async () => (await restarted.Operator(OperatorMethods.GetHealth, new GetHealthRequest())).Role == "standalone",
            TimeSpan.FromSeconds(10), "recovery to end once every agent is back");
    }

    [Fact]
    public async Task Recovery_finished_counts_the_agents_that_re_registered()
    {
        var agents = new List<TestAgentLink>();
        await using (var master = await MasterFixture.StartAsync(Configure, _workDir))
        {
            for (var i = 0; i < 2; i++)
            {
                var agent = new TestAgentLink(master.Channel, Res.Of(1, 512), $"host-{i}");
                await agent.ConnectAsync();
                await agent.DisposeAsync();
                agents.Add(agent);
            }
        }

        var logs = new CapturedLogs();
        await using var restarted = await MasterFixture.StartAsync(Configure, _workDir, logs: logs);
        var back = new List<TestAgentLink>();
        try
        {
            foreach (var agent in agents)
            {
                var again = new TestAgentLink(restarted.Channel, Res.Of(1, 512), agent.Info.Hostname);
                again.Info.Id = agent.AgentId;
                back.Add(again);
                await again.ConnectAsync();
            }
            await Poll.UntilAsync(() => logs.Messages.Any(m => m.StartsWith("Recovery finished", StringComparison.Ordinal)), TimeSpan.FromSeconds(10), "recovery to finish");
            Assert.Contains("Recovery finished: 2 agents re-registered, 0 marked unreachable", logs.Messages);
        }
        finally
        {
            foreach (var agent in back)
            {
                await agent.DisposeAsync();
            }
        }
    }
}
