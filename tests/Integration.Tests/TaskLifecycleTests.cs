using System.Diagnostics;
using Sched.V1;
using Scheduler.FrameworkSdk;
using Xunit;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Integration.Tests;

/// <summary>Tasks from launch to their end on a real master and agents.</summary>
public sealed class TaskLifecycleTests(SharedCluster cluster) : IClassFixture<SharedCluster>
{
    [Fact]
    public async Task A_task_runs_and_finishes()
    {
        await using var fw = new TestFramework(cluster.MasterAddress, "it-finish");
        var task = await fw.LaunchAsync(new TaskBuilder("ok-1").Shell("echo done").Cpus(0.1).Mem(32));
        var finished = await fw.WaitForStateAsync(task.TaskId, TaskState.TaskFinished);
        Assert.Equal(0, finished.ExitCode);
        var states = fw.Updates.Where(u => u.TaskId == task.TaskId).Select(u => u.State).Distinct().ToList();
        Assert.Equal([TaskState.TaskStarting, TaskState.TaskRunning, TaskState.TaskFinished], states);
        Assert.All(fw.Updates.Where(u => u.TaskId == task.TaskId), u => Assert.False(string.IsNullOrEmpty(u.Uuid)));
    }

    [Fact]
    public async Task A_nonzero_exit_is_reported_as_failed_with_its_exit_code()
    {
        await using var fw = new TestFramework(cluster.MasterAddress, "it-fail");
        var task = await fw.LaunchAsync(new TaskBuilder("fail-3").Shell("exit 3").Cpus(0.1).Mem(32));
        var failed = await fw.WaitForStateAsync(task.TaskId, TaskState.TaskFailed);
        Assert.Equal(3, failed.ExitCode);
        Assert.Equal(TaskStatus.Types.Reason.CommandExitedNonzero, failed.Reason);
        Assert.False(string.IsNullOrWhiteSpace(failed.Message));
    }

    [Fact]
    public async Task Kill_stops_a_task_and_one_that_ignores_SIGTERM_after_its_grace_period()
    {
        await using var fw = new TestFramework(cluster.MasterAddress, "it-kill");
        var polite = await fw.LaunchAsync(new TaskBuilder("polite").Shell("exec sleep 60").Cpus(0.1).Mem(32).KillGrace(TimeSpan.FromSeconds(5)));
        var stubborn = await fw.LaunchAsync(new TaskBuilder("stubborn").Shell("trap '' TERM; while true; do sleep 0.1; done").Cpus(0.1).Mem(32).KillGrace(TimeSpan.FromSeconds(2)));
        await fw.WaitForStateAsync(polite.TaskId, TaskState.TaskRunning);
        await fw.WaitForStateAsync(stubborn.TaskId, TaskState.TaskRunning);

        var clock = Stopwatch.StartNew();
        await fw.Client.KillAsync(polite.TaskId);
        await fw.WaitForStateAsync(polite.TaskId, TaskState.TaskKilled);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"a task that exits on SIGTERM took {clock.Elapsed.TotalSeconds:0.0} s to be killed");

        clock.Restart();
        await fw.Client.KillAsync(stubborn.TaskId);
        await fw.WaitForStateAsync(stubborn.TaskId, TaskState.TaskKilled);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1.8), $"a task ignoring SIGTERM was gone after {clock.Elapsed.TotalSeconds:0.0} s, before its 2 s grace");
    }

    [Fact]
    public async Task A_status_update_whose_acknowledgement_is_lost_is_sent_again()
    {
        // Acknowledgements off: the first RUNNING update is never acknowledged, as if the
        // acknowledgement were lost; the agent re-sends it (same uuid) until one arrives.
        await using var fw = new TestFramework(cluster.MasterAddress, "it-ack", autoAcknowledge: false);
        var task = await fw.LaunchAsync(new TaskBuilder("unacked").Shell("exec sleep 30").Cpus(0.1).Mem(32));
        var starting = await fw.WaitForStateAsync(task.TaskId, TaskState.TaskStarting);
        var again = await fw.WaitForUpdateAsync(u => u.TaskId == task.TaskId && u.Uuid == starting.Uuid, TimeSpan.FromSeconds(15), skip: 1);
        Assert.Equal(TaskState.TaskStarting, again.State);

        // Once acknowledged, the next update in the task's queue (RUNNING) is delivered.
        Assert.DoesNotContain(fw.Updates, u => u.TaskId == task.TaskId && u.State == TaskState.TaskRunning);
        await fw.Client.AcknowledgeAsync(starting);
        var running = await fw.WaitForStateAsync(task.TaskId, TaskState.TaskRunning, TimeSpan.FromSeconds(15));
        await fw.Client.AcknowledgeAsync(running);
    }

    [Fact]
    public async Task Schedctl_run_prints_the_output_and_exits_with_the_task_exit_code()
    {
        var run = await Schedctl.RunAsync(TimeSpan.FromSeconds(60), "--master", cluster.MasterAddress, "run", "--", "sh", "-c", "echo hello; exit 3");
        Assert.True(run.ExitCode == 3, run.ToString());
        Assert.Contains("hello", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("failed", run.Stderr, StringComparison.Ordinal);

        var tasks = await Schedctl.RunAsync(TimeSpan.FromSeconds(30), "--master", cluster.MasterAddress, "tasks", "--all", "--json");
        Assert.True(tasks.ExitCode == 0, tasks.ToString());
        var parsed = Google.Protobuf.JsonParser.Default.Parse<GetTasksResponse>(tasks.Stdout);
        var record = Assert.Single(parsed.Tasks, t => t.Name == "run" && t.Status.HasExitCode && t.Status.ExitCode == 3);
        Assert.Equal(TaskState.TaskFailed, record.State);

        var table = await Schedctl.RunAsync(TimeSpan.FromSeconds(30), "--master", cluster.MasterAddress, "tasks", "--all");
        Assert.Contains(record.TaskId, table.Stdout, StringComparison.Ordinal);
        Assert.Contains("exit 3", table.Stdout, StringComparison.Ordinal);

        var logs = await Schedctl.RunAsync(TimeSpan.FromSeconds(30), "--master", cluster.MasterAddress, "logs", record.TaskId);
        Assert.True(logs.ExitCode == 0, logs.ToString());
        Assert.Equal("hello\n", logs.Stdout);
    }

    [Fact]
    public async Task Operator_commands_show_the_cluster_and_fail_clearly()
    {
        var agents = await Schedctl.RunAsync(TimeSpan.FromSeconds(30), "--master", cluster.MasterAddress, "agents", "--json");
        Assert.True(agents.ExitCode == 0, agents.ToString());
        var parsed = Google.Protobuf.JsonParser.Default.Parse<GetAgentsResponse>(agents.Stdout);
        Assert.Equal(cluster.Agents.Select(a => a.AgentId).Order(), parsed.Agents.Select(a => a.Info.Id).Order());

        var leader = await Schedctl.RunAsync(TimeSpan.FromSeconds(30), "--master", cluster.MasterAddress, "leader");
        Assert.Contains(cluster.MasterAddress, leader.Stdout, StringComparison.Ordinal);

        var weights = await Schedctl.RunAsync(TimeSpan.FromSeconds(30), "--master", cluster.MasterAddress, "weights", "set", "test=2");
        Assert.True(weights.ExitCode == 0, weights.ToString());
        var roles = await Schedctl.RunAsync(TimeSpan.FromSeconds(30), "--master", cluster.MasterAddress, "roles", "--json");
        var role = Google.Protobuf.JsonParser.Default.Parse<GetRolesResponse>(roles.Stdout).Roles.Single(r => r.Name == "test");
        Assert.Equal(2, role.Weight);

        var unreachable = await Schedctl.RunAsync(TimeSpan.FromSeconds(30), "--master", "127.0.0.1:1", "agents");
        Assert.Equal(1, unreachable.ExitCode);
        Assert.Equal("schedctl: cannot reach the master at 127.0.0.1:1: is it running? (schedctl dev up)", unreachable.Stderr.Trim());

        var usage = await Schedctl.RunAsync(TimeSpan.FromSeconds(30), "tasks", "--no-such-option");
        Assert.Equal(2, usage.ExitCode);
        Assert.Single(usage.Stderr.Trim().Split('\n'));
    }
}
