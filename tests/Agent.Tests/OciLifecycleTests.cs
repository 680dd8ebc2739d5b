using System.Diagnostics;
using Sched.V1;
using Scheduler.Agent.Native;
using Xunit;
using static Scheduler.Agent.Tests.OciExecutorTests;

namespace Scheduler.Agent.Tests;

/// <summary>
/// OCI containers through their whole life with real runc: images from an <c>oci-archive</c>,
/// kills of containers that ignore SIGTERM, and an agent SIGKILLed and restarted while containers
/// run. Root only (runc needs it); CI runs as root.
/// </summary>
public class OciLifecycleTests
{
    [NeedsFact(Needs.Containers | Needs.Skopeo)]
    public async Task An_oci_archive_image_runs_and_leaves_no_temporary_copy()
    {
        await using var h = new AgentHarness();
        var layout = BuildImage(h.WorkDir);
        var archive = Path.Combine(h.WorkDir, "image.tar");
        AgentHarness.Run("skopeo", "--insecure-policy", "copy", $"oci:{layout}:t", $"oci-archive:{archive}:t");
        Directory.Delete(layout, recursive: true); // only the archive is left to run from

        h.Launch(OciTask("arch", $"oci-archive:{archive}:t", "echo from-archive"));
        var end = await h.WaitTerminalAsync("arch", TimeSpan.FromSeconds(60));
        var sandbox = Path.Combine(h.WorkDir, "sandboxes", "fw1", "arch");
        Assert.True(end.State == TaskState.TaskFinished, $"{end.State} {end.Message}; stderr: {await File.ReadAllTextAsync(Path.Combine(sandbox, "stderr"))}");
        Assert.Equal("from-archive\n", await File.ReadAllTextAsync(Path.Combine(sandbox, "stdout")));
        var tmp = Path.Combine(h.WorkDir, "images", "tmp");
        Assert.True(!Directory.Exists(tmp) || Directory.GetFileSystemEntries(tmp).Length == 0, "the unpacked archive was left behind");

        h.Launch(OciTask("badtag", $"oci-archive:{archive}:nope", "true"));
        var bad = await h.WaitTerminalAsync("badtag");
        Assert.Equal((TaskState.TaskFailed, TaskStatus.Types.Reason.ImageFailed), (bad.State, bad.Reason));
        Assert.Contains("tag 'nope' not found", bad.Message);
        Assert.True(!Directory.Exists(tmp) || Directory.GetFileSystemEntries(tmp).Length == 0, "a failed pull left its unpacked archive behind");
        ProcessExecutorTests.AssertNoCgroups(h);
    }

    [NeedsFact(Needs.Containers)]
    public async Task Killing_a_container_that_ignores_sigterm_leaves_no_process_and_no_runtime_state()
    {
        await using var h = new AgentHarness();
        var layout = BuildImage(h.WorkDir);
        h.Launch(OciTask("stubborn", $"oci:{layout}:t", "trap '' TERM; for i in 1 2 3; do (trap '' TERM; exec sleep 1000) & done; echo up > /mnt/sandbox/ready; wait"));
        await h.WaitForStateAsync("stubborn", TaskState.TaskRunning, TimeSpan.FromSeconds(60));
        await Poll.UntilAsync(() => File.Exists(Path.Combine(h.WorkDir, "sandboxes", "fw1", "stubborn", "ready")), TimeSpan.FromSeconds(20));
        var task = h.Core.Tasks.Single(t => t.Info.TaskId == "stubborn");
        var container = task.ContainerId;
        var pids = ContainerPids(h, container);
        Assert.True(pids.Count >= 4, $"expected the shell and 3 sleeps in the container, saw {pids.Count}");

        var sw = Stopwatch.StartNew();
        await h.Core.KillAsync("fw1", "stubborn", new KillPolicy { GracePeriodSeconds = 0.5 }, TaskStatus.Types.Reason.KilledByFramework);
        var end = await h.WaitTerminalAsync("stubborn", TimeSpan.FromSeconds(30));
        Assert.Equal((TaskState.TaskKilled, TaskStatus.Types.Reason.KilledByFramework), (end.State, end.Reason));
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(400), "SIGKILL came before the grace period");
        foreach (var pid in pids)
        {
            Assert.False(ProcFs.Stat(pid) is { Alive: true }, $"container process {pid} survived the kill");
        }
        AssertNoRuntimeState(h, container);
        ProcessExecutorTests.AssertNoCgroups(h);
    }

    [NeedsFact(Needs.Containers)]
    public async Task Containers_survive_an_agent_crash_and_are_re_adopted_with_their_exit_reported()
    {
        var h = new AgentHarness();
        await using var _ = h;
        var layout = BuildImage(h.WorkDir);
        // A fifo in the sandbox lets the test end "exits" while the agent is down, without sleeping.
        h.Launch(OciTask("long", $"oci:{layout}:t", "exec sleep 1000"), OciTask("exits", $"oci:{layout}:t", "mkfifo /mnt/sandbox/fifo && read x < /mnt/sandbox/fifo; exit 42"));
        var fifo = Path.Combine(h.WorkDir, "sandboxes", "fw1", "exits", "fifo");
        await h.WaitForStateAsync("long", TaskState.TaskRunning, TimeSpan.FromSeconds(60));
        await h.WaitForStateAsync("exits", TaskState.TaskRunning, TimeSpan.FromSeconds(60));
        await Poll.UntilAsync(() => File.Exists(fifo), TimeSpan.FromSeconds(20));
        var longTask = h.Core.Tasks.Single(t => t.Info.TaskId == "long");
        var supervisorPid = longTask.Handle!.SupervisorPid;
        var exitsContainer = h.Core.Tasks.Single(t => t.Info.TaskId == "exits").ContainerId;

        await h.CrashAsync();
        await Task.Run(() => File.WriteAllText(fifo, "go\n")).WaitAsync(TimeSpan.FromSeconds(20));
        await Poll.UntilAsync(() => File.Exists(Path.Combine(h.WorkDir, "meta", "runs", exitsContainer, "status.json")), TimeSpan.FromSeconds(20));
        // While the agent was down the supervisor cleaned up after its container.
        AssertNoRuntimeState(h, exitsContainer);

        h.Start();
        var exits = await h.WaitTerminalAsync("exits");
        Assert.Equal((TaskState.TaskFailed, TaskStatus.Types.Reason.CommandExitedNonzero, 42), (exits.State, exits.Reason, exits.ExitCode));
        Assert.Contains(h.Core.Tasks, t => t.Info.TaskId == "long" && !t.Ended && t.Handle!.SupervisorPid == supervisorPid);
        Assert.True(ContainerPids(h, longTask.ContainerId).Count > 0, "the re-adopted container has no process");
        await h.Core.KillAsync("fw1", "long", new KillPolicy { GracePeriodSeconds = 0.2 }, TaskStatus.Types.Reason.KilledByFramework);
        Assert.Equal(TaskState.TaskKilled, (await h.WaitTerminalAsync("long", TimeSpan.FromSeconds(30))).State);
        AssertNoRuntimeState(h, longTask.ContainerId);
        ProcessExecutorTests.AssertNoCgroups(h);
    }

    [NeedsFact(Needs.Containers)]
    public async Task A_memory_hog_container_is_reported_as_out_of_memory_with_its_peak()
    {
        await using var h = new AgentHarness();
        var layout = BuildImage(h.WorkDir);
        h.Launch(OciTask("hog", $"oci:{layout}:t", "x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; while true; do x=$x$x; done", mem: 24));
        var end = await h.WaitTerminalAsync("hog", TimeSpan.FromSeconds(60));
        Assert.Equal((TaskState.TaskFailed, TaskStatus.Types.Reason.ContainerLimitationMemory), (end.State, end.Reason));
        Assert.Contains("memory limit of 24 MiB", end.Message);
        Assert.Contains("peak", end.Message);
        Assert.DoesNotContain("peak 0 MiB", end.Message);
        // The stopped container, kept for its usage, was deleted afterwards.
        var state = Path.Combine(h.WorkDir, "meta", "runc");
        Assert.True(!Directory.Exists(state) || Directory.GetDirectories(state).Length == 0, "runc state was left behind");
        ProcessExecutorTests.AssertNoCgroups(h);
    }

    private static List<int> ContainerPids(AgentHarness h, string container)
    {
        var procs = Path.Combine("/sys/fs/cgroup/freezer/sched", Isolation.Isolators.ScopeFor(h.WorkDir), container, "cgroup.procs");
        return File.Exists(procs) ? File.ReadAllLines(procs).Where(l => l.Length > 0).Select(int.Parse).ToList() : [];
    }

    /// <summary>runc keeps a state directory per container under its root: it must be gone.</summary>
    private static void AssertNoRuntimeState(AgentHarness h, string container)
    {
        var state = Path.Combine(h.WorkDir, "meta", "runc", container);
        Assert.False(Directory.Exists(state), $"runc state {state} was left behind");
    }
}
