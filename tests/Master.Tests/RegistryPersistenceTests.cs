using Sched.V1;
using Scheduler.Master.Registry;
using Scheduler.Master.Tests.Harness;
using Scheduler.Protocol;
using Xunit;

namespace Scheduler.Master.Tests;

public sealed class RegistryPersistenceTests : IDisposable
{
    private readonly string _workDir = Directory.CreateTempSubdirectory("sched-master-restart-").FullName;

    public void Dispose() => Directory.Delete(_workDir, recursive: true);

    [Fact]
    public async Task Quota_and_weights_survive_a_master_restart_on_the_file_registry()
    {
        await using (var master = await MasterFixture.StartAsync(workDir: _workDir))
        {
            await master.Operator(OperatorMethods.UpdateWeights, new UpdateWeightsRequest { Weights = { new WeightInfo { Role = "eng/web", Weight = 2.5 } } });
            await master.Operator(OperatorMethods.UpdateQuota, new UpdateQuotaRequest
            {
                Force = true,
                Quotas = { new QuotaInfo { Role = "eng", Guarantees = { Res.Scalar("cpus", 3) }, Limits = { Res.Scalar("cpus", 8) } } },
            });
        }

        await using (var store = FileRegistryStore.Open(_workDir))
        {
            var snapshot = await RegistryRecords.LoadAsync(store, _workDir, CancellationToken.None);
            Assert.Equal(2.5, snapshot.Weights["eng/web"].Weight);
            Assert.Equal(3, Res.Get(snapshot.Quotas["eng"].Guarantees, "cpus"));
        }

        await using (var master = await MasterFixture.StartAsync(workDir: _workDir))
        {
            var quota = await master.Operator(OperatorMethods.GetQuota, new GetQuotaRequest());
            var eng = Assert.Single(quota.Quotas);
            Assert.Equal("eng", eng.Role);
            Assert.Equal(8, Res.Get(eng.Limits, "cpus"));
        }
    }

    [Fact]
    public async Task After_a_restart_agents_re_register_with_their_tasks_and_frameworks_resubscribe()
    {
        string agentId;
        FrameworkInfo info;
        Dictionary<string, TaskRecord> tasks;
        List<FrameworkInfo> frameworks;
        await using (var cluster = await ClusterOn(_workDir))
        {
            var agent = await cluster.AddAgentAsync();
            agent.AutoFinish = false;
            var fw = await cluster.AddFrameworkAsync(TestFramework.DefaultInfo(failoverSeconds: 60));
            var offer = await fw.NextOfferAsync();
            await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("t1", offer, Res.Of(1, 100))]);
            await fw.AcknowledgeAsync(await fw.NextUpdateAsync("t1", TaskState.TaskStarting));
            await fw.AcknowledgeAsync(await fw.NextUpdateAsync("t1", TaskState.TaskRunning));
            await Poll.UntilAsync(() => agent.UnackedCount == 0, TimeSpan.FromSeconds(10), "acks");
            agentId = agent.AgentId;
            info = fw.Info.Clone();
            tasks = agent.Tasks.ToDictionary(p => p.Key, p => p.Value.Clone());
            frameworks = [.. agent.Frameworks];
        }

        await using var restarted = await MasterFixture.StartAsync(workDir: _workDir);
        // The framework is known from the registry (disconnected, with a deadline) before anyone connects.
        var known = Assert.Single(await restarted.GetFrameworksAsync());
        Assert.Equal(info.Id, known.Info.Id);
        Assert.False(known.Connected);
        Assert.True(known.FailoverDeadline > 0);

        await using var agent2 = new TestAgentLink(restarted.Channel, Res.Of(4, 4096));
        agent2.Info.Id = agentId;
        foreach (var (k, v) in tasks)
        {
            agent2.Tasks[k] = v;
        }
        agent2.Frameworks.AddRange(frameworks);
        var registered = await agent2.ConnectAsync();
        Assert.Equal(agentId, registered.AgentId);

        await using var fw2 = new TestFramework(restarted.Channel, info);
        await fw2.SubscribeAsync();
        await fw2.ReconcileAsync(("t1", agentId));
        await fw2.NextUpdateAsync("t1", TaskState.TaskRunning);
        Assert.Equal(TaskState.TaskRunning, Assert.Single(await restarted.GetTasksAsync()).State);
        await restarted.AssertAccountingAsync();
    }

    [Fact]
    public async Task Agents_that_do_not_re_register_become_unreachable_and_failover_deadlines_survive_a_restart()
    {
        double deadline;
        string agentId;
        await using (var cluster = await ClusterOn(_workDir))
        {
            var agent = await cluster.AddAgentAsync();
            agentId = agent.AgentId;
            var fw = await cluster.AddFrameworkAsync(TestFramework.DefaultInfo(failoverSeconds: 600));
            await fw.DisconnectAsync();
            await Poll.UntilAsync(async () => !(await cluster.Master.GetFrameworksAsync()).Single().Connected, TimeSpan.FromSeconds(10), "disconnect");
            deadline = (await cluster.Master.GetFrameworksAsync()).Single().FailoverDeadline;
        }

        await using var restarted = await MasterFixture.StartAsync(workDir: _workDir);
        var health = await restarted.Operator(OperatorMethods.GetHealth, new GetHealthRequest());
        Assert.Equal("recovering", health.Role);
        // The deadline counts from the original disconnect, not from the restart.
        Assert.Equal(deadline, (await restarted.GetFrameworksAsync()).Single().FailoverDeadline, 2);
        await Poll.UntilAsync(async () => (await restarted.Operator(OperatorMethods.GetHealth, new GetHealthRequest())).Role == "standalone",
            TimeSpan.FromSeconds(10), "the re-registration window to close");
        var lost = Assert.Single(await restarted.GetAgentsAsync());
        Assert.Equal(agentId, lost.Info.Id);
        Assert.Equal(AgentStatus.AgentUnreachable, lost.Status);
    }

    private static async Task<Cluster> ClusterOn(string workDir)
    {
        var cluster = await Cluster.StartOnAsync(workDir);
        return cluster;
    }
}
