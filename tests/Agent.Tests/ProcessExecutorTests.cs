using System.Diagnostics;
using Sched.V1;
using Scheduler.Agent.Native;
using Xunit;

namespace Scheduler.Agent.Tests;

/// <summary>Real supervisors, real processes, real cgroups (v1 on this host). Root-only parts
/// return early with a message when not root (CI runs as root).</summary>
public class ProcessExecutorTests
{
    [Fact]
    public async Task A_command_runs_in_its_sandbox_with_stdout_and_exit_status()
    {
        await using var h = new AgentHarness();
        h.Launch(AgentHarness.ShellTask("ok", "echo hello $SCHED_TASK_ID; pwd"), AgentHarness.ShellTask("bad", "echo oops >&2; exit 3"));
        var ok = await h.WaitTerminalAsync("ok");
        Assert.Equal((TaskState.TaskFinished, 0), (ok.State, ok.ExitCode));
        var sandbox = Path.Combine(h.WorkDir, "sandboxes", "fw1", "ok");
        Assert.Equal($"hello ok\n{sandbox}\n", await File.ReadAllTextAsync(Path.Combine(sandbox, "stdout")));
        var bad = await h.WaitTerminalAsync("bad");
        Assert.Equal((TaskState.TaskFailed, TaskStatus.Types.Reason.CommandExitedNonzero, 3), (bad.State, bad.Reason, bad.ExitCode));
        Assert.Equal("oops\n", await File.ReadAllTextAsync(Path.Combine(h.WorkDir, "sandboxes", "fw1", "bad", "stderr")));
        Assert.Equal([TaskState.TaskStarting, TaskState.TaskRunning, TaskState.TaskFinished], h.Updates("ok").Select(u => u.State));
    }

    [Fact]
    public async Task A_missing_executable_fails_with_a_reason_and_leaves_nothing()
    {
        await using var h = new AgentHarness();
        var task = AgentHarness.ShellTask("nofile", "");
        task.Command = new CommandInfo { Shell = false, Value = "./foo" };
        h.Launch(task);
        var end = await h.WaitTerminalAsync("nofile");
        Assert.Equal((TaskState.TaskFailed, TaskStatus.Types.Reason.ExecutableNotFound), (end.State, end.Reason));
        Assert.Contains("/foo: no such file; check the command path", end.Message);
        var runs = Path.Combine(h.WorkDir, "meta", "runs");
        Assert.True(!Directory.Exists(runs) || Directory.GetDirectories(runs).Length == 0, "a run dir was left behind");
        AssertNoCgroups(h);
    }

    [Fact]
    public async Task Killing_a_task_that_ignores_sigterm_and_forks_leaves_no_process()
    {
        await using var h = new AgentHarness();
        // The task and its children ignore SIGTERM; children write their pids.
        h.Launch(AgentHarness.ShellTask("stubborn", "trap '' TERM; for i in 1 2 3; do (trap '' TERM; echo $$ $(sh -c 'echo $PPID') >> pids; exec sleep 1000) & done; echo $$ >> pids; wait"));
        await h.WaitForStateAsync("stubborn", TaskState.TaskRunning);
        var pidsFile = Path.Combine(h.WorkDir, "sandboxes", "fw1", "stubborn", "pids");
        await Poll.UntilAsync(() => File.Exists(pidsFile) && File.ReadAllLines(pidsFile).Length >= 4, TimeSpan.FromSeconds(20));
        var pids = File.ReadAllText(pidsFile).Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).Distinct().ToList();
        var sw = Stopwatch.StartNew();
        await h.Core.KillAsync("fw1", "stubborn", new KillPolicy { GracePeriodSeconds = 0.5 }, TaskStatus.Types.Reason.KilledByFramework);
        var end = await h.WaitTerminalAsync("stubborn");
        Assert.Equal((TaskState.TaskKilled, TaskStatus.Types.Reason.KilledByFramework), (end.State, end.Reason));
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(400), "SIGKILL came before the grace period");
        // Every process of the task is gone (sleep children included).
        var all = Directory.EnumerateDirectories("/proc").Select(d => Path.GetFileName(d)).Where(n => int.TryParse(n, out _)).Select(n => int.Parse(n)).ToHashSet();
        foreach (var pid in pids)
        {
            Assert.False(all.Contains(pid) && ProcFs.Stat(pid) is { Alive: true } && File.ReadAllText($"/proc/{pid}/cmdline").Contains("sleep"), $"process {pid} survived the kill");
        }
        AssertNoCgroups(h);
    }

    [NeedsFact(Needs.Root)]
    public async Task A_memory_hog_is_oom_killed_and_reported_with_limit_and_peak()
    {
        await using var h = new AgentHarness();
        // Grows a shell variable until the 32 MiB limit is hit.
        h.Launch(AgentHarness.ShellTask("hog", "x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; while true; do x=$x$x; done", mem: 32));
        var end = await h.WaitTerminalAsync("hog", TimeSpan.FromSeconds(60));
        Assert.Equal((TaskState.TaskFailed, TaskStatus.Types.Reason.ContainerLimitationMemory), (end.State, end.Reason));
        Assert.Contains("memory limit of 32 MiB", end.Message);
        Assert.Contains("peak", end.Message);
        AssertNoCgroups(h);
    }

    [NeedsFact(Needs.Root)]
    public async Task A_fork_bomb_is_stopped_by_the_pids_limit()
    {
        await using var h = new AgentHarness();
        h.Options.TaskPidsLimit = 32;
        // Tries to start 200 sleepers; forks beyond the limit fail and the task reports how many ran.
        h.Launch(AgentHarness.ShellTask("bomb", "n=0; for i in $(seq 200); do sleep 30 & n=$((n+1)); done 2>/dev/null; ls /proc | grep -c . >/dev/null; cat /sys/fs/cgroup/pids/$(cut -d: -f3 < /proc/self/cgroup | head -1)/pids.current 2>/dev/null; kill $(jobs -p) 2>/dev/null; exit 0"));
        var end = await h.WaitTerminalAsync("bomb", TimeSpan.FromSeconds(60));
        Assert.True(Scheduler.Protocol.Tasks.TaskLifecycle.IsTerminal(end.State));
        var stderr = await File.ReadAllTextAsync(Path.Combine(h.WorkDir, "sandboxes", "fw1", "bomb", "stderr"));
        var stdout = await File.ReadAllTextAsync(Path.Combine(h.WorkDir, "sandboxes", "fw1", "bomb", "stdout"));
        Assert.True(stderr.Contains("fork", StringComparison.OrdinalIgnoreCase) || stderr.Contains("Resource temporarily unavailable") || end.State == TaskState.TaskFailed,
            $"fork bomb was not limited: stdout={stdout} stderr={stderr}");
        AssertNoCgroups(h);
    }

    [NeedsFact(Needs.Root)]
    public async Task A_cpu_hog_limited_to_half_a_core_uses_at_most_about_55_percent()
    {
        await using var h = new AgentHarness();
        h.Launch(AgentHarness.ShellTask("spin", "while :; do :; done", cpus: 0.5));
        await h.WaitForStateAsync("spin", TaskState.TaskRunning);
        var task = h.Core.Tasks.Single(t => t.Info.TaskId == "spin");
        var before = task.Executor.Stats(task.Handle!)!;
        var sw = Stopwatch.StartNew();
        await Task.Delay(4000); // a measurement window (long, so CFS period edges weigh little), not synchronisation
        var after = task.Executor.Stats(task.Handle!)!;
        var used = (after.CpuUserSeconds + after.CpuSystemSeconds - before.CpuUserSeconds - before.CpuSystemSeconds) / sw.Elapsed.TotalSeconds;
        // On a loaded machine the hog may get less than its quota; it must never get more.
        Assert.InRange(used, 0.01, 0.55);
        Assert.Equal(0.5, after.CpuLimit, 3);
    }

    [Fact]
    public async Task Tasks_survive_an_agent_crash_and_are_re_adopted_with_real_exit_codes()
    {
        var h = new AgentHarness();
        await using var _ = h;
        // A fifo lets the test end "exits" while the agent is down, without sleeping.
        h.Launch(AgentHarness.ShellTask("long", "sleep 1000"), AgentHarness.ShellTask("exits", "mkfifo fifo && read x < fifo; exit 42"));
        var fifo = Path.Combine(h.WorkDir, "sandboxes", "fw1", "exits", "fifo");
        await h.WaitForStateAsync("long", TaskState.TaskRunning);
        await h.WaitForStateAsync("exits", TaskState.TaskRunning);
        await Poll.UntilAsync(() => File.Exists(fifo), TimeSpan.FromSeconds(20));
        var supervisorPid = h.Core.Tasks.Single(t => t.Info.TaskId == "long").Handle!.SupervisorPid;
        Assert.NotEqual(Libc.getsid(0), Libc.getsid(supervisorPid)); // own session: outlives the agent

        await h.CrashAsync();
        // Opening a fifo for writing blocks until the reader is there: bound it.
        await Task.Run(() => File.WriteAllText(fifo, "go\n")).WaitAsync(TimeSpan.FromSeconds(20));
        await Poll.UntilAsync(() => File.Exists(Path.Combine(h.WorkDir, "meta", "runs", h.Core.Tasks.Single(t => t.Info.TaskId == "exits").ContainerId, "status.json")), TimeSpan.FromSeconds(20));

        h.Start();
        var exits = await h.WaitTerminalAsync("exits");
        Assert.Equal((TaskState.TaskFailed, 42), (exits.State, exits.ExitCode));
        Assert.Contains(h.Core.Tasks, t => t.Info.TaskId == "long" && !t.Ended && t.Handle!.SupervisorPid == supervisorPid);
        Assert.Contains(h.Core.BuildRegister(new AgentInfo()).Tasks, r => r.TaskId == "long" && r.State == TaskState.TaskRunning);
        await h.Core.KillAsync("fw1", "long", new KillPolicy { GracePeriodSeconds = 0.2 }, TaskStatus.Types.Reason.KilledByFramework);
        Assert.Equal(TaskState.TaskKilled, (await h.WaitTerminalAsync("long")).State);
    }

    [NeedsFact(Needs.Root)]
    public async Task What_a_task_leaves_running_is_killed_and_its_cgroups_removed_while_the_agent_is_down()
    {
        var h = new AgentHarness();
        await using var _ = h;
        // The main process exits (when the test writes the fifo) leaving a sleeper in its cgroups,
        // in a session of its own (out of reach of a kill of the task's process group).
        h.Launch(AgentHarness.ShellTask("leaves", "mkfifo fifo; setsid sleep 1000 & echo $! > bg; read x < fifo; exit 0"));
        var sandbox = Path.Combine(h.WorkDir, "sandboxes", "fw1", "leaves");
        await h.WaitForStateAsync("leaves", TaskState.TaskRunning);
        await Poll.UntilAsync(() => File.Exists(Path.Combine(sandbox, "fifo")) && File.Exists(Path.Combine(sandbox, "bg")) && File.ReadAllText(Path.Combine(sandbox, "bg")).EndsWith('\n'), TimeSpan.FromSeconds(20));
        var container = h.Core.Tasks.Single(t => t.Info.TaskId == "leaves").ContainerId;
        var bg = int.Parse(File.ReadAllText(Path.Combine(sandbox, "bg")).Trim(), System.Globalization.CultureInfo.InvariantCulture);

        await h.CrashAsync();
        await Task.Run(() => File.WriteAllText(Path.Combine(sandbox, "fifo"), "go\n")).WaitAsync(TimeSpan.FromSeconds(20));
        await Poll.UntilAsync(() => File.Exists(Path.Combine(h.WorkDir, "meta", "runs", container, "status.json")), TimeSpan.FromSeconds(20));
        // With no agent around, the supervisor froze and killed the leftover and removed the cgroups.
        Assert.False(ProcFs.Stat(bg) is { Alive: true }, $"the leftover process {bg} survived its task");
        var scope = Isolation.Isolators.ScopeFor(h.WorkDir);
        foreach (var c in new[] { "memory", "cpu", "cpuacct", "pids", "freezer" })
        {
            Assert.False(Directory.Exists($"/sys/fs/cgroup/{c}/sched/{scope}/{container}"), $"the {c} cgroup of the task was left behind");
        }

        h.Start();
        var end = await h.WaitTerminalAsync("leaves");
        Assert.Equal((TaskState.TaskFinished, 0), (end.State, end.ExitCode));
    }

    [Fact]
    public async Task After_a_host_reboot_old_tasks_are_reported_gone()
    {
        var h = new AgentHarness();
        await using var _ = h;
        h.Launch(AgentHarness.ShellTask("old", "sleep 1000"));
        await h.WaitForStateAsync("old", TaskState.TaskRunning);
        await h.CrashAsync();
        // Simulate a reboot: the checkpoint carries another boot id than the kernel's now.
        var meta = Path.Combine(h.WorkDir, "meta");
        await File.WriteAllTextAsync(Path.Combine(meta, "boot.id"), "boot-before-reboot");
        foreach (var file in Directory.GetFiles(Path.Combine(meta, "tasks"), "*.json"))
        {
            var text = await File.ReadAllTextAsync(file);
            await File.WriteAllTextAsync(file, text.Replace(ProcFs.BootId(), "boot-before-reboot", StringComparison.Ordinal));
        }
        h.Start();
        var end = await h.WaitTerminalAsync("old");
        Assert.Equal((TaskState.TaskGone, TaskStatus.Types.Reason.AgentRebooted), (end.State, end.Reason));
        // The stale container was removed at start (its processes killed with it).
        AssertNoCgroups(h);
    }

    [Fact]
    public async Task A_task_whose_supervisor_vanished_while_the_agent_was_down_is_reported_executor_terminated()
    {
        var h = new AgentHarness();
        await using var _ = h;
        h.Launch(AgentHarness.ShellTask("orphaned", "echo $$ > pid; exec sleep 1000"));
        var pidFile = Path.Combine(h.WorkDir, "sandboxes", "fw1", "orphaned", "pid");
        await h.WaitForStateAsync("orphaned", TaskState.TaskRunning);
        await Poll.UntilAsync(() => File.Exists(pidFile) && File.ReadAllText(pidFile).EndsWith('\n'), TimeSpan.FromSeconds(20));
        var taskPid = int.Parse(File.ReadAllText(pidFile).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var supervisor = h.Core.Tasks.Single(t => t.Info.TaskId == "orphaned").Handle!;

        await h.CrashAsync();
        // The supervisor dies with the agent down, before it can record anything.
        Assert.Equal(0, Libc.kill(supervisor.SupervisorPid, 9));
        await Poll.UntilAsync(() => !ProcFs.IsAlive(supervisor.SupervisorPid, supervisor.SupervisorStartTime), TimeSpan.FromSeconds(20));
        Assert.False(File.Exists(Path.Combine(supervisor.RunDir, "status.json")), "the supervisor recorded a result before it died");

        h.Start();
        var end = await h.WaitTerminalAsync("orphaned");
        Assert.Equal((TaskState.TaskFailed, TaskStatus.Types.Reason.ExecutorTerminated), (end.State, end.Reason));
        Assert.Contains($"supervisor (pid {supervisor.SupervisorPid}) vanished while the agent was down", end.Message, StringComparison.Ordinal);
        if (ProcFs.Stat(taskPid) is { Alive: true })
        {
            // Without cgroups nothing reaches the orphaned task: stop it here so the test leaves nothing behind.
            Libc.kill(taskPid, 9);
            Assert.False(AgentHarness.IsRoot, $"the task's process {taskPid} survived the removal of its stale cgroups");
        }
    }

    internal static void AssertNoCgroups(AgentHarness h)
    {
        var scope = Isolation.Isolators.ScopeFor(h.WorkDir);
        foreach (var c in new[] { "memory", "cpu", "pids", "freezer", "cpuacct" })
        {
            var dir = $"/sys/fs/cgroup/{c}/sched/{scope}";
            var live = h.Core.Tasks.Where(t => !t.Ended).Select(t => t.ContainerId).ToHashSet();
            if (Directory.Exists(dir))
            {
                var leftover = Directory.GetDirectories(dir).Select(d => Path.GetFileName(d)).Where(n => !live.Contains(n)).ToList();
                Assert.True(leftover.Count == 0, $"leftover cgroups in {dir}: {string.Join(", ", leftover)}");
            }
        }
    }
}
