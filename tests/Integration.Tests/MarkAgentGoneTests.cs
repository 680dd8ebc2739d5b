using System.Globalization;
using Sched.V1;
using Scheduler.Cli.Cluster;
using Scheduler.FrameworkSdk;
using Scheduler.Protocol;
using Xunit;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Integration.Tests;

/// <summary>
/// <c>schedctl mark-gone AGENT</c> (Operator.MarkAgentGone) on a real master and agents: tasks
/// reported TASK_GONE_BY_OPERATOR, a connected agent told to kill its tasks and stop, and the id
/// refused for good, after a master restart too.
/// </summary>
public sealed class MarkAgentGoneTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_marked_gone_agent_loses_its_tasks_as_gone_by_operator_and_is_never_admitted_again()
    {
        await using var cluster = new ClusterFixture();
        var master = await cluster.StartMasterAsync();
        var connected = await cluster.StartAgentAsync();
        var down = await cluster.StartAgentAsync();
        await using var fw = new TestFramework(cluster.MasterAddress, "it-mark-gone");
        var onConnected = await fw.LaunchAsync(new TaskBuilder("on-connected").Shell("echo $$ > pid; exec sleep 64.5").Cpus(0.1).Mem(32), connected.AgentId);
        var onDown = await fw.LaunchAsync(new TaskBuilder("on-down").Shell("echo $$ > pid; exec sleep 64.6").Cpus(0.1).Mem(32), down.AgentId);
        await fw.WaitForStateAsync(onConnected.TaskId, TaskState.TaskRunning);
        await fw.WaitForStateAsync(onDown.TaskId, TaskState.TaskRunning);
        var connectedPid = await TaskPidAsync(connected, onConnected.TaskId);
        var downPid = await TaskPidAsync(down, onDown.TaskId);

        // A connected agent: its task is reported gone, the agent kills it and stops.
        var marked = await Cli(cluster, "mark-gone", connected.AgentId);
        Assert.True(marked.ExitCode == 0, marked.ToString());
        Assert.Contains($"agent {connected.AgentId} marked gone: 1 task(s)", marked.Stdout, StringComparison.Ordinal);
        AssertGoneByOperator(await fw.WaitForStateAsync(onConnected.TaskId, TaskState.TaskGoneByOperator), connected.AgentId);
        Assert.Equal(3, await connected.Process!.Exited.WaitAsync(Timeout));
        Assert.Contains("marked gone by an operator", connected.Process.RecentOutput, StringComparison.Ordinal);
        await WaitDeadAsync(connectedPid, "the task of the agent marked gone while connected");

        // An agent that is down when marked gone: its task is reported gone at once.
        await ClusterFixture.KillAsync(down);
        var markedDown = await Cli(cluster, "mark-gone", down.AgentId);
        Assert.True(markedDown.ExitCode == 0, markedDown.ToString());
        AssertGoneByOperator(await fw.WaitForStateAsync(onDown.TaskId, TaskState.TaskGoneByOperator), down.AgentId);
        var agents = await Cli(cluster, "agents");
        Assert.DoesNotContain(connected.AgentId, agents.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(down.AgentId, agents.Stdout, StringComparison.Ordinal);

        // The registry keeps it gone: after a master restart the agent coming back is refused,
        // and kills the task it still ran.
        await ClusterFixture.KillAsync(master);
        await cluster.RestartAsync(master);
        var refused = await Assert.ThrowsAnyAsync<Exception>(() => cluster.RestartAsync(down));
        Assert.Contains("exited with code 3", refused.Message, StringComparison.Ordinal);
        Assert.Contains($"agent {down.AgentId} was marked gone by an operator", down.Process!.RecentOutput, StringComparison.Ordinal);
        Assert.Contains("empty work dir", down.Process.RecentOutput, StringComparison.Ordinal);
        await WaitDeadAsync(downPid, "the task of the agent marked gone while down");

        var again = await Cli(cluster, "mark-gone", down.AgentId);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("already marked gone", again.Stdout, StringComparison.Ordinal);
        var unknown = await Cli(cluster, "mark-gone", "no-such-agent");
        Assert.NotEqual(0, unknown.ExitCode);
        Assert.Contains("no-such-agent", unknown.Stderr, StringComparison.Ordinal);
    }

    private static void AssertGoneByOperator(TaskStatus status, string agentId)
    {
        Assert.Equal(TaskStatus.Types.Reason.AgentRemoved, status.Reason);
        Assert.Equal(TaskStatus.Types.Source.Master, status.Source);
        Assert.Contains($"marked agent {agentId} gone", status.Message, StringComparison.Ordinal);
    }

    private static Task<CliResult> Cli(ClusterFixture cluster, params string[] args) => Schedctl.RunAsync(Timeout, ["--master", cluster.MasterAddress, .. args]);

    private static async Task<int> TaskPidAsync(ClusterFixture.Node agent, string taskId)
    {
        var sandboxes = Path.Combine(agent.WorkDir, "sandboxes");
        string? text = null;
        await Poll.UntilAsync(() =>
        {
            var file = Directory.Exists(sandboxes) ? Directory.GetFiles(sandboxes, "pid", SearchOption.AllDirectories).FirstOrDefault(f => f.Contains(taskId, StringComparison.Ordinal)) : null;
            text = file is null ? null : File.ReadAllText(file);
            return text is not null && text.EndsWith('\n');
        }, Timeout);
        return int.Parse(text!.Trim(), CultureInfo.InvariantCulture);
    }

    private static Task WaitDeadAsync(int pid, string what) =>
        Poll.UntilAsync(() => !(Scheduler.Agent.Native.ProcFs.Stat(pid) is { Alive: true }), Timeout, $"{what} (pid {pid}) to be killed");
}
