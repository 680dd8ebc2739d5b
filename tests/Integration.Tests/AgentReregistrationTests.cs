using Sched.V1;
using Scheduler.Channels;
using Scheduler.Cli.Cluster;
using Scheduler.FrameworkSdk;
using Scheduler.Protocol;
using Xunit;

namespace Scheduler.Integration.Tests;

/// <summary>
/// An agent that comes back with a task the master must stop (its framework was torn down while
/// the agent was cut off) is told so after <c>registered</c>, kills the task, and stays
/// registered. The master used to send the shutdown first; the agent dropped every such stream,
/// re-registered with the same task and was told the same again: it flapped between registered
/// and unreachable until restarted.
/// </summary>
public sealed class AgentReregistrationTests : IAsyncDisposable
{
    private readonly ClusterFixture _cluster = new();

    public ValueTask DisposeAsync() => _cluster.DisposeAsync();

    [Fact]
    public async Task An_agent_back_with_a_task_of_a_removed_framework_kills_it_and_stays_registered()
    {
        var master = await _cluster.StartMasterAsync();
        var agent = await _cluster.StartAgentAsync();
        var masterLog = Directory.GetFiles(_cluster.LogDir, "master0-*.log").Single();
        using var channel = GrpcChannels.ForAddress(master.Address);
        async Task<AgentStatus?> StatusAsync() =>
            (await channel.AsyncUnaryCall(OperatorMethods.GetAgents, new GetAgentsRequest()).ResponseAsync).Agents.SingleOrDefault()?.Status;

        // A duration no other process has, to find the task's process by its command line.
        var seconds = "600." + Random.Shared.Next(100_000, 999_999).ToString(System.Globalization.CultureInfo.InvariantCulture);
        string frameworkId;
        await using (var fw = new TestFramework(master.Address, "it-gone") { TeardownOnDispose = false })
        {
            frameworkId = await fw.SubscribedAsync();
            var task = await fw.LaunchAsync(new TaskBuilder("long").Shell("exec sleep " + seconds).Cpus(0.1).Mem(32));
            await fw.WaitForStateAsync(task.TaskId, TaskState.TaskRunning);
        }

        // Cut the agent off past its timeout, and tear its task's framework down meanwhile.
        DaemonProcess.Signal(agent.Process!.Pid, 19); // SIGSTOP
        try
        {
            await Poll.UntilAsync(async () => await StatusAsync() == AgentStatus.AgentUnreachable, TimeSpan.FromSeconds(30), "the master to mark the stopped agent unreachable");
            await channel.AsyncUnaryCall(OperatorMethods.TeardownFramework, new TeardownFrameworkRequest { FrameworkId = frameworkId }).ResponseAsync;
        }
        finally
        {
            DaemonProcess.Signal(agent.Process!.Pid, 18); // SIGCONT
        }

        await Poll.UntilAsync(async () => await StatusAsync() == AgentStatus.AgentActive, TimeSpan.FromSeconds(30), "the agent to register again");
        var marks = Marks(masterLog, agent.AgentId);
        // The task is killed on the agent …
        await Poll.UntilAsync(() => !Directory.GetDirectories("/proc").Any(d => ReadOrEmpty(Path.Combine(d, "cmdline")) == $"sleep\0{seconds}\0"),
            TimeSpan.FromSeconds(30), "the torn-down framework's task to be killed", TimeSpan.FromMilliseconds(250));
        // … and the agent stays registered: no new unreachable mark over five agent timeouts (2 s each).
        var until = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < until)
        {
            Assert.True(Marks(masterLog, agent.AgentId) == marks && await StatusAsync() == AgentStatus.AgentActive,
                "the agent flapped after it came back; master log:\n" + string.Join("\n", Lines(masterLog).TakeLast(20)) + "\nagent output:\n" + agent.Process.RecentOutput);
            await Task.Delay(200);
        }
    }

    private static string ReadOrEmpty(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return "";
        }
        catch (UnauthorizedAccessException)
        {
            return "";
        }
    }

    private static string[] Lines(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Split('\n');
    }

    private static int Marks(string path, string id) => Lines(path).Count(l => l.Contains($"Agent {id} unreachable", StringComparison.Ordinal));
}
