using Sched.V1;

namespace Scheduler.Jobs.Tests;

/// <summary>A master with one agent, then a second: a gang of 3 × 1.5 cpus does not fit one agent of 4 cpus.</summary>
public sealed class GangTests : IAsyncLifetime
{
    private readonly JobsCluster _cluster = new();

    public async Task InitializeAsync()
    {
        await _cluster.StartMasterAsync();
        await _cluster.StartAgentAsync();
        await _cluster.StartJobsAsync();
    }

    public Task DisposeAsync() => _cluster.DisposeAsync().AsTask();

    [Fact]
    public async Task A_gang_that_cannot_fit_starts_nothing_and_names_the_shortfall_then_starts_all_when_capacity_appears()
    {
        await _cluster.Jobs.SubmitJobAsync(new SubmitJobRequest
        {
            JobFile = """
                name: gang
                type: batch
                count: 3
                gang: true
                task: {command: 'sleep 2', resources: {cpus: 1.5, mem: 64}}
                """,
        });
        var waiting = await _cluster.UntilAsync("gang", j => j.Instances.All(i => i.PendingReason.Contains("gang of 3", StringComparison.Ordinal)), TimeSpan.FromSeconds(30), "the shortfall named");
        Assert.Contains("the offers fit 2, 1 more need room", waiting.Instances[0].PendingReason, StringComparison.Ordinal);
        Assert.Empty(await _cluster.LiveTasksAsync("gang-"));

        await _cluster.StartAgentAsync();
        var started = await _cluster.UntilAsync("gang", j => j.Instances.All(i => i.TaskId.Length > 0), TimeSpan.FromSeconds(30), "all three placed");
        Assert.Contains(started.Events, e => e.Message.Contains("gang of 3 tasks placed together", StringComparison.Ordinal));
        await _cluster.UntilAsync("gang", j => j.Summary.State == "complete", TimeSpan.FromSeconds(60), "the gang to finish");
    }
}
