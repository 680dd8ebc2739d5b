using Sched.V1;
using Scheduler.Integration.Tests;

namespace Scheduler.Jobs.Tests;

/// <summary>
/// <c>samples/jobs/notebooks.yaml</c> as shipped, with real Jupyter Notebook servers (Debian's
/// <c>jupyter-notebook</c>): each user's server becomes healthy, its idle probe reads Jupyter's own
/// <c>last_activity</c> and stops it, and a start on request brings it back. Only the idle time,
/// the users and the size are shortened for the test.
/// </summary>
public sealed class NotebookSampleTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);
    private readonly JobsCluster _cluster = new();

    public async Task InitializeAsync()
    {
        if (NotebookFactAttribute.Missing is not null)
        {
            return;
        }
        await _cluster.StartMasterAsync();
        await _cluster.StartAgentAsync();
        await _cluster.StartJobsAsync();
    }

    public Task DisposeAsync() => _cluster.DisposeAsync().AsTask();

    [NotebookFact]
    public async Task The_notebook_sample_stops_a_real_jupyter_server_when_jupyter_says_it_is_idle_and_starts_it_again()
    {
        var sample = await File.ReadAllTextAsync(Path.Combine(Schedctl.RepoRoot, "samples", "jobs", "notebooks.yaml"));
        var file = Shorten(sample, ("after: 30m", "after: 20s"), ("instance_names: [alice, bob]", "instance_names: [alice]"),
            ("resources: {cpus: 1, mem: 1024, ports: 1}", "resources: {cpus: 0.5, mem: 512, ports: 1}"));
        await _cluster.Jobs.SubmitJobAsync(new SubmitJobRequest { JobFile = file, FileName = "notebooks.yaml" });
        try
        {
            await _cluster.UntilAsync("notebooks", j => j.Instances.Any(i => i.State == "running" && i.Healthy == true), Timeout, "alice's Jupyter server running and healthy");
            var idle = await _cluster.UntilAsync("notebooks", j => j.Instances.Any(i => i.State == "idle"), Timeout, "alice's server stopped as idle");
            Assert.Contains(idle.Events, e => e.Message == "instance notebooks-alice stopped: idle");
            Assert.Contains(idle.Events, e => e.Message.StartsWith("instance notebooks-alice idle for ", StringComparison.Ordinal));

            await _cluster.Jobs.StartInstanceAsync(new StartInstanceRequest { Name = "notebooks", Instance = "alice" });
            await _cluster.UntilAsync("notebooks", j => j.Instances.Any(i => i.State == "running" && i.Healthy == true), Timeout, "alice's server running and healthy again");
        }
        finally
        {
            await _cluster.Jobs.StopJobAsync(new StopJobRequest { Name = "notebooks", Purge = true });
        }
    }

    private static string Shorten(string sample, params (string From, string To)[] changes)
    {
        foreach (var (from, to) in changes)
        {
            Assert.True(sample.Contains(from, StringComparison.Ordinal), $"samples/jobs/notebooks.yaml no longer has '{from}': update this test with the sample");
            sample = sample.Replace(from, to, StringComparison.Ordinal);
        }
        return sample;
    }
}

/// <summary>A fact skipped, with the reason, where Jupyter Notebook is not installed.</summary>
public sealed class NotebookFactAttribute : FactAttribute
{
    public static readonly string? Missing = File.Exists("/usr/bin/jupyter-notebook") ? null : "jupyter-notebook is not installed (Debian package jupyter-notebook; ./test.sh installs it)";

    public NotebookFactAttribute()
    {
        if (Missing is not null)
        {
            Skip = Missing;
        }
    }
}
