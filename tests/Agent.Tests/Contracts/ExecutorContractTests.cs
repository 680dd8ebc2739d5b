using System.Diagnostics;
using Sched.V1;
using Xunit;

namespace Scheduler.Agent.Tests.Contracts;

/// <summary>
/// What the agent core relies on from every <see cref="Execution.IExecutor"/>, driven through a
/// real agent core (<see cref="AgentHarness"/>): exit codes become FINISHED or FAILED with the
/// code, a kill ends the task as KILLED, SIGTERM is followed by SIGKILL after the grace, and an
/// executor that claims to survive agent restarts has its task re-adopted and its end reported.
/// One subclass per executor says how to write a task for it, or why this host cannot run it.
/// </summary>
public abstract class ExecutorContractTests
{
    /// <summary>Skips the test (with the reason) when this host cannot run the executor.</summary>
    protected abstract void SkipUnlessAvailable();

    /// <summary>Whether the executor's tasks outlive an agent restart.</summary>
    protected abstract bool SurvivesAgentRestart { get; }

    /// <summary>A task that exits at once with <paramref name="code"/>.</summary>
    protected abstract TaskInfo Exiting(AgentHarness h, string id, int code);

    /// <summary>A task that runs until killed, ignoring SIGTERM when <paramref name="ignoreSigterm"/>;
    /// once its signal handling is set up it writes a file <c>ready</c> in its sandbox, unless
    /// <see cref="SignalsReady"/> is false.</summary>
    protected abstract TaskInfo RunningUntilKilled(AgentHarness h, string id, bool ignoreSigterm);

    /// <summary>Whether <see cref="RunningUntilKilled"/> tasks write the <c>ready</c> file (real
    /// processes; a mock task is ready once it runs).</summary>
    protected virtual bool SignalsReady => true;

    /// <summary>Waits until the task runs and, for real processes, has set up its signal handling
    /// (a SIGTERM before that would find no trap).</summary>
    private async Task RunningAsync(AgentHarness h, string id)
    {
        await h.WaitForStateAsync(id, TaskState.TaskRunning, Slow);
        if (SignalsReady)
        {
            var ready = Path.Combine(h.WorkDir, "sandboxes", "fw1", id, "ready");
            await Poll.UntilAsync(() => File.Exists(ready), TimeSpan.FromSeconds(20));
        }
    }

    private static readonly TimeSpan Slow = TimeSpan.FromSeconds(60);

    [SkippableFact]
    public async Task Exit_zero_is_finished_and_a_non_zero_exit_is_failed_with_its_code()
    {
        SkipUnlessAvailable();
        await using var h = new AgentHarness();
        h.Launch(Exiting(h, "ok", 0), Exiting(h, "bad", 3));
        var ok = await h.WaitTerminalAsync("ok", Slow);
        Assert.Equal((TaskState.TaskFinished, 0), (ok.State, ok.ExitCode));
        Assert.Contains(h.Updates("ok"), u => u.State == TaskState.TaskRunning);
        var bad = await h.WaitTerminalAsync("bad", Slow);
        Assert.Equal((TaskState.TaskFailed, TaskStatus.Types.Reason.CommandExitedNonzero, 3), (bad.State, bad.Reason, bad.ExitCode));
        Assert.False(string.IsNullOrEmpty(bad.Message));
    }

    [SkippableFact]
    public async Task A_killed_task_ends_as_killed_with_the_reason_given()
    {
        SkipUnlessAvailable();
        await using var h = new AgentHarness();
        h.Launch(RunningUntilKilled(h, "long", ignoreSigterm: false));
        await RunningAsync(h, "long");
        await h.Core.KillAsync("fw1", "long", new KillPolicy { GracePeriodSeconds = 5 }, TaskStatus.Types.Reason.KilledByFramework);
        var end = await h.WaitTerminalAsync("long", Slow);
        Assert.Equal((TaskState.TaskKilled, TaskStatus.Types.Reason.KilledByFramework), (end.State, end.Reason));
    }

    [SkippableFact]
    public async Task A_task_ignoring_sigterm_is_killed_after_the_grace()
    {
        SkipUnlessAvailable();
        await using var h = new AgentHarness();
        h.Launch(RunningUntilKilled(h, "stubborn", ignoreSigterm: true));
        await RunningAsync(h, "stubborn");
        var sw = Stopwatch.StartNew();
        await h.Core.KillAsync("fw1", "stubborn", new KillPolicy { GracePeriodSeconds = 0.5 }, TaskStatus.Types.Reason.KilledByFramework);
        var end = await h.WaitTerminalAsync("stubborn", Slow);
        Assert.Equal(TaskState.TaskKilled, end.State);
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(450), $"the task ended {sw.Elapsed.TotalMilliseconds:0} ms after SIGTERM, before the 500 ms grace");
    }

    [SkippableFact]
    public async Task A_task_that_outlives_an_agent_restart_is_re_adopted_and_can_be_killed()
    {
        SkipUnlessAvailable();
        Skip.IfNot(SurvivesAgentRestart, "this executor's tasks do not outlive the agent (ExecutorCapabilities.SurvivesAgentRestart is false)");
        await using var h = new AgentHarness();
        h.Launch(RunningUntilKilled(h, "long", ignoreSigterm: false));
        await RunningAsync(h, "long");
        await h.CrashAsync();
        h.Start();
        Assert.Contains(h.Core.Tasks, t => t.Info.TaskId == "long" && !t.Ended);
        await h.Core.KillAsync("fw1", "long", new KillPolicy { GracePeriodSeconds = 1 }, TaskStatus.Types.Reason.KilledByFramework);
        Assert.Equal(TaskState.TaskKilled, (await h.WaitTerminalAsync("long", Slow)).State);
    }
}
