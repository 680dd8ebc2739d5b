using Sched.V1;

namespace Scheduler.Jobs.Tests;

/// <summary>The leading master SIGKILLed in the middle of a rolling update.</summary>
public sealed class MasterKillTests : IAsyncLifetime
{
    private readonly JobsCluster _cluster = new();
    private Scheduler.Integration.Tests.ClusterFixture.Node _master = null!;

    public async Task InitializeAsync()
    {
        _master = await _cluster.StartMasterAsync();
        await _cluster.StartAgentAsync();
        await _cluster.StartJobsAsync();
    }

    public Task DisposeAsync() => _cluster.DisposeAsync().AsTask();

    [Fact]
    public async Task A_master_killed_mid_rollout_loses_no_instance_and_the_rollout_finishes()
    {
        const string Service = """
            name: web
            type: service
            instances: 3
            update: {max_parallel: 1, min_healthy: 2, healthy_deadline: 30s}
            task:
              command: 'sleep 600'
              env: {V: "{V}"}
              resources: {cpus: 0.1, mem: 32}
              kill_grace: 1s
              health_check: {command: 'true', interval: 500ms}
            """;
        await _cluster.Jobs.SubmitJobAsync(new SubmitJobRequest { JobFile = Service.Replace("{V}", "1", StringComparison.Ordinal) });
        await _cluster.UntilAsync("web", j => j.Summary.State == "running" && j.Instances.All(i => i.Healthy), TimeSpan.FromSeconds(60), "three healthy instances");

        await _cluster.Jobs.SubmitJobAsync(new SubmitJobRequest { JobFile = Service.Replace("{V}", "2", StringComparison.Ordinal) });
        await _cluster.UntilAsync("web", j => j.Instances.Any(i => i.Version == 2 && i.State == "running"), TimeSpan.FromSeconds(60), "the rollout under way");
        await Scheduler.Integration.Tests.ClusterFixture.KillAsync(_master);
        await _cluster.RestartAsync(_master);

        var done = await _cluster.UntilAsync("web", j => j.Summary.State == "running" && j.Instances.All(i => i.Version == 2 && i.Healthy), TimeSpan.FromSeconds(90), "the rollout to finish after the master restart");
        await Poll.UntilAsync(async () => (await _cluster.LiveTasksAsync("web-")).Count == 3, TimeSpan.FromSeconds(30), "the master to list exactly the three instances' tasks");
        var live = await _cluster.LiveTasksAsync("web-");
        Assert.Equal(done.Instances.Select(i => i.TaskId).Order(StringComparer.Ordinal), live.Select(t => t.TaskId).Order(StringComparer.Ordinal));
    }
}
