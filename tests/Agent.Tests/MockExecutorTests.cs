using Sched.V1;
using Xunit;

namespace Scheduler.Agent.Tests;

public class MockExecutorTests
{
    private static TaskInfo Mock(string id, params (string, string)[] labels)
    {
        var t = new TaskInfo { TaskId = id, Container = new ContainerInfo { Type = ContainerInfo.Types.Type.Mock } };
        foreach (var (k, v) in labels)
        {
            t.Labels[k] = v;
        }
        return t;
    }

    [Fact]
    public async Task Mock_tasks_go_through_starting_running_and_end_as_labelled()
    {
        await using var h = new AgentHarness(isolation: "none");
        h.Launch(Mock("ok"), Mock("bad", ("mock.exit_code", "7")), Mock("nostart", ("mock.fail_start", "true")));
        var ok = await h.WaitTerminalAsync("ok");
        Assert.Equal(TaskState.TaskFinished, ok.State);
        Assert.Equal([TaskState.TaskStarting, TaskState.TaskRunning, TaskState.TaskFinished], h.Updates("ok").Select(u => u.State));
        var bad = await h.WaitTerminalAsync("bad");
        Assert.Equal((TaskState.TaskFailed, 7), (bad.State, bad.ExitCode));
        var nostart = await h.WaitTerminalAsync("nostart");
        Assert.Equal((TaskState.TaskFailed, TaskStatus.Types.Reason.ContainerLaunchFailed), (nostart.State, nostart.Reason));
        Assert.All(h.Updates("ok"), u => Assert.False(string.IsNullOrEmpty(u.Uuid)));
        Assert.All(h.Updates("ok"), u => Assert.Equal(TaskStatus.Types.Source.Agent, u.Source));
    }

    [Fact]
    public async Task A_mock_task_ignoring_sigterm_ends_only_after_the_grace()
    {
        await using var h = new AgentHarness(isolation: "none");
        h.Launch(Mock("stubborn", ("mock.run_ms", "-1"), ("mock.ignore_sigterm", "true")));
        await h.WaitForStateAsync("stubborn", TaskState.TaskRunning);
        var started = DateTime.UtcNow;
        await h.Core.KillAsync("fw1", "stubborn", new KillPolicy { GracePeriodSeconds = 0.5 }, TaskStatus.Types.Reason.KilledByFramework);
        var end = await h.WaitTerminalAsync("stubborn");
        Assert.Equal((TaskState.TaskKilled, TaskStatus.Types.Reason.KilledByFramework), (end.State, end.Reason));
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromMilliseconds(450));
    }

    [Fact]
    public async Task Killing_an_unknown_task_answers_gone_and_duplicates_and_bad_ids_are_refused()
    {
        await using var h = new AgentHarness(isolation: "none");
        await h.Core.KillAsync("fw1", "ghost", null, TaskStatus.Types.Reason.KilledByFramework);
        var gone = await h.WaitTerminalAsync("ghost");
        Assert.Equal((TaskState.TaskGone, TaskStatus.Types.Reason.TaskUnknown), (gone.State, gone.Reason));

        h.Launch(Mock("dup", ("mock.run_ms", "-1")));
        await h.WaitForStateAsync("dup", TaskState.TaskRunning);
        h.Launch(Mock("dup"));
        var dup = await h.WaitForAsync("dup", s => s.Reason == TaskStatus.Types.Reason.DuplicateTaskId);
        Assert.Contains("already running", dup.Message);

        h.Launch(Mock("../evil"));
        var evil = await h.WaitTerminalAsync("../evil");
        Assert.Equal((TaskState.TaskError, TaskStatus.Types.Reason.TaskInvalid), (evil.State, evil.Reason));
    }

    [Fact]
    public async Task Unacknowledged_updates_are_resent_and_survive_an_agent_restart()
    {
        var h = new AgentHarness(isolation: "none", autoAck: false);
        await using var _ = h;
        h.Launch(Mock("t"));
        await h.WaitForStateAsync("t", TaskState.TaskStarting);
        // Only the head is in flight until acknowledged.
        await Poll.UntilAsync(() => h.Core.Updates.Pending("fw1", "t").Count >= 3, TimeSpan.FromSeconds(10), "three updates of t pending");
        Assert.Equal(3, h.Core.Updates.Pending("fw1", "t").Count);
        Assert.Single(h.Updates("t"));
        await h.CrashAsync();
        h.Start();
        var register = h.Core.BuildRegister(new AgentInfo());
        Assert.Contains(register.Tasks, r => r.TaskId == "t" && r.State == TaskState.TaskFinished);
        h.AutoAck = true;
        await h.WaitForStateAsync("t", TaskState.TaskFinished);
        Assert.Equal([TaskState.TaskStarting, TaskState.TaskRunning, TaskState.TaskFinished], h.Updates("t").Select(u => u.State).Distinct());
    }
}
