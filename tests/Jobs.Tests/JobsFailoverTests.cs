using Grpc.Core;
using Scheduler.Channels;
using Sched.V1;
using Scheduler.Integration.Tests;
using Scheduler.LocalEtcd;
using Scheduler.Protocol;

namespace Scheduler.Jobs.Tests;

/// <summary>
/// Two jobs processes on the masters' etcd (a real etcd, a master on it, an agent): one active, the
/// other standing by; the active one SIGKILLed.
/// </summary>
public sealed class JobsFailoverTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly JobsCluster _cluster = new();
    private LocalEtcdCluster? _etcd;
    private Scheduler.Integration.Tests.ClusterFixture.Node _agent = null!;

    public async Task InitializeAsync()
    {
        _etcd = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 1 });
        await _cluster.StartMasterAsync("--etcd", _etcd.Endpoint(0));
        _agent = await _cluster.StartAgentAsync();
    }

    public async Task DisposeAsync()
    {
        await _cluster.DisposeAsync();
        if (_etcd is not null)
        {
            await _etcd.DisposeAsync();
        }
    }

    [Fact]
    public async Task The_standby_takes_over_from_a_killed_active_instance_and_launches_nothing_twice()
    {
        var etcd = _etcd!.Endpoint(0);
        JobsInstance[] instances = [await _cluster.StartJobsInstanceAsync("--etcd", etcd), await _cluster.StartJobsInstanceAsync("--etcd", etcd)];
        var active = await ActiveAsync(instances);
        var standby = instances.Single(i => i != active);
        _cluster.UseJobs(active.Address);
        await _cluster.Jobs.SubmitJobAsync(new SubmitJobRequest
        {
            JobFile = """
                name: keep
                type: service
                instances: 3
                task: {command: 'sleep 600', resources: {cpus: 0.1, mem: 32}, kill_grace: 1s}
                """,
        });
        var before = await _cluster.UntilAsync("keep", j => j.Instances.Count == 3 && j.Instances.All(i => i.State == "running"), Timeout, "three instances running");
        var tasks = before.Instances.Select(i => i.TaskId).Order(StringComparer.Ordinal).ToList();
        var frameworkId = before.Instances[0].FrameworkId;

        // The standby refuses and names the active instance; schedctl, given the standby's
        // address, follows the trailer to the active one.
        using (var channel = GrpcChannels.ForAddress(standby.Address))
        {
            var refused = await Assert.ThrowsAsync<RpcException>(async () => await new Sched.V1.Jobs.JobsClient(channel).ListJobsAsync(new ListJobsRequest()));
            Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
            Assert.Equal(active.Address, refused.Trailers.GetValue(MetadataKeys.Leader));
        }
        var status = await Schedctl.RunAsync(Timeout, "--master", _cluster.MasterAddress, "job", "status", "keep", "--jobs", standby.Address);
        Assert.True(status.ExitCode == 0, status.ToString());
        Assert.All(tasks, t => Assert.Contains(t, status.Stdout, StringComparison.Ordinal));
        _cluster.UseJobs(standby.Address);
        Assert.Equal(tasks, (await _cluster.JobAsync("keep")).Instances.Select(i => i.TaskId).Order(StringComparer.Ordinal));

        await _cluster.KillJobsAsync(active.Process);
        Assert.Same(standby, await ActiveAsync([standby]));
        _cluster.UseJobs(standby.Address);
        var after = await _cluster.UntilAsync("keep", j => j.Instances.All(i => i.State == "running"), Timeout, "the three instances running under the new active instance");
        Assert.Equal(tasks, after.Instances.Select(i => i.TaskId).Order(StringComparer.Ordinal));
        Assert.Equal(frameworkId, after.Instances[0].FrameworkId);

        // The new active instance places work: one more instance is one more launch.
        await _cluster.Jobs.ScaleJobAsync(new ScaleJobRequest { Name = "keep", Count = 4 });
        var scaled = await _cluster.UntilAsync("keep", j => j.Instances.Count == 4 && j.Instances.All(i => i.State == "running"), Timeout, "four instances running");
        var ids = scaled.Instances.Select(i => i.TaskId).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(4, ids.Distinct(StringComparer.Ordinal).Count());
        Assert.Superset(tasks.ToHashSet(StringComparer.Ordinal), ids.ToHashSet(StringComparer.Ordinal));

        // Exactly these four tasks were ever launched: the master runs them and the agent made
        // one sandbox per launch.
        var live = await _cluster.LiveTasksAsync("keep-");
        Assert.Equal(ids, live.Select(t => t.TaskId).Order(StringComparer.Ordinal));
        var sandboxes = Directory.GetDirectories(Path.Combine(_agent.WorkDir, "sandboxes"), "keep-*", SearchOption.AllDirectories)
            .Select(d => Path.GetFileName(d)!).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(ids, sandboxes);
        await _cluster.Jobs.StopJobAsync(new StopJobRequest { Name = "keep", Purge = true });
    }

    /// <summary>Awaits exactly one of <paramref name="instances"/> answering the Jobs API (the others refuse with UNAVAILABLE).</summary>
    private static async Task<JobsInstance> ActiveAsync(IReadOnlyList<JobsInstance> instances)
    {
        JobsInstance? active = null;
        var answers = new List<string>();
        await Poll.UntilAsync(async () =>
        {
            var serving = new List<JobsInstance>();
            answers.Clear();
            foreach (var instance in instances)
            {
                using var channel = GrpcChannels.ForAddress(instance.Address);
                try
                {
                    await new Sched.V1.Jobs.JobsClient(channel).ListJobsAsync(new ListJobsRequest(), deadline: DateTime.UtcNow.AddSeconds(5));
                    serving.Add(instance);
                    answers.Add($"{instance.Address}: active");
                }
                catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
                {
                    answers.Add($"{instance.Address}: {e.Status.Detail}");
                }
            }
            Assert.True(serving.Count <= 1, $"two jobs instances active at once: {string.Join("; ", answers)}");
            active = serving.SingleOrDefault();
            return active is not null;
        }, Timeout, () => $"one active jobs instance; answers: {string.Join("; ", answers)}");
        return active!;
    }
}
