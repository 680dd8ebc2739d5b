using Scheduler.Channels;
using System.Globalization;
using Sched.V1;
using Scheduler.Cli.Cluster;
using Scheduler.Integration.Tests;
using Scheduler.FrameworkSdk;
using Scheduler.Protocol;

namespace Scheduler.Jobs.Tests;

/// <summary>
/// A real master, agents (process executor) and the jobs framework as a real
/// <c>schedctl jobs run</c> process, on loopback. The jobs process can be SIGKILLed and started
/// again on the same work dir; disposal stops everything the fixture started.
/// </summary>
public class JobsCluster : ClusterFixture
{
    private int _jobsStarts;

    public DaemonProcess? JobsProcess { get; private set; }

    public string JobsAddress { get; private set; } = "";

    public string JobsWorkDir => Path.Combine(WorkDir, "jobs");

    public Sched.V1.Jobs.JobsClient Jobs { get; private set; } = null!;

    private readonly List<DaemonProcess> _instances = [];

    private MasterDirectory? _jobsDirectory;

    public async Task StartJobsAsync()
    {
        var instance = await StartJobsInstanceAsync();
        JobsProcess = instance.Process;
        UseJobs(instance.Address);
    }

    /// <summary>Starts one more <c>schedctl jobs run</c> process (on the shared work dir unless
    /// <paramref name="extraArgs"/> say otherwise); it is stopped with the fixture.</summary>
    public async Task<JobsInstance> StartJobsInstanceAsync(params string[] extraArgs)
    {
        var n = Interlocked.Increment(ref _jobsStarts);
        var log = Path.Combine(LogDir, $"jobs-{n}.log");
        List<string> args = ["jobs", "run", "--master", MasterAddress, "--work-dir", JobsWorkDir, "--listen", "127.0.0.1:0",
            "--watch-parent", Environment.ProcessId.ToString(CultureInfo.InvariantCulture), .. extraArgs];
        var process = DaemonProcess.Start($"jobs{n}", args, log, command: Schedctl.Command);
        _instances.Add(process);
        var address = await process.WaitForAsync(process.Listening, "the Jobs API address", StartTimeout, CancellationToken.None);
        return new JobsInstance(process, address);
    }

    /// <summary>Points <see cref="Jobs"/> at the Jobs API at <paramref name="address"/>; like
    /// <c>schedctl job</c>, it follows a standby instance's redirect to the active one.</summary>
    public void UseJobs(string address)
    {
        JobsAddress = address;
        _jobsDirectory?.Dispose();
        _jobsDirectory = new MasterDirectory([address]);
        Jobs = new Sched.V1.Jobs.JobsClient(new JobsApiInvoker(_jobsDirectory));
    }

    public async Task KillJobsAsync()
    {
        await KillJobsAsync(JobsProcess!);
        JobsProcess = null;
    }

    /// <summary>SIGKILLs one jobs process and awaits its exit.</summary>
    public async Task KillJobsAsync(DaemonProcess process)
    {
        process.Kill();
        await process.Exited.WaitAsync(TimeSpan.FromSeconds(10));
        _instances.Remove(process);
        await process.DisposeAsync();
    }

    public async Task<JobInfo> JobAsync(string name) => (await Jobs.GetJobAsync(new GetJobRequest { Name = name, History = true })).Job;

    /// <summary>Awaits a condition on a job's state (polled through GetJob), with a timeout that reports the last state seen.</summary>
    public async Task<JobInfo> UntilAsync(string name, Func<JobInfo, bool> condition, TimeSpan timeout, string what)
    {
        JobInfo? last = null;
        await Poll.UntilAsync(async () => condition(last = await JobAsync(name)), timeout, () => $"{what}; job {name} last seen: {last}", TimeSpan.FromMilliseconds(100));
        return last!;
    }

    public async Task<IReadOnlyList<TaskRecord>> LiveTasksAsync(string prefix)
    {
        using var channel = GrpcChannels.ForAddress(MasterAddress);
        var tasks = await new Operator.OperatorClient(channel).GetTasksAsync(new GetTasksRequest());
        return tasks.Tasks.Where(t => t.TaskId.StartsWith(prefix, StringComparison.Ordinal)).ToList();
    }

    public new async ValueTask DisposeAsync()
    {
        foreach (var process in _instances)
        {
            await process.DisposeAsync();
        }
        _jobsDirectory?.Dispose();
        await base.DisposeAsync();
    }
}

/// <summary>One <c>schedctl jobs run</c> process and its Jobs API address.</summary>
public sealed record JobsInstance(DaemonProcess Process, string Address);

/// <summary>A master, two agents on racks r1 and r2, and the jobs framework, shared by a class.</summary>
public sealed class TwoRackCluster : JobsCluster, IAsyncLifetime
{
    public async Task InitializeAsync()
    {
        await StartMasterAsync();
        await StartAgentAsync(AgentResources, "--attributes", "rack:r1");
        await StartAgentAsync(AgentResources, "--attributes", "rack:r2");
        await StartJobsAsync();
    }

    Task IAsyncLifetime.DisposeAsync() => DisposeAsync().AsTask();
}
