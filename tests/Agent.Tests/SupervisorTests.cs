using System.Diagnostics;
using System.Text.Json;
using Sched.V1;
using Scheduler.Agent.Execution;
using Scheduler.Agent.Isolation;
using Scheduler.Agent.Supervision;
using Xunit;

namespace Scheduler.Agent.Tests;

/// <summary>
/// The native supervisor (<c>sched-supervisor</c>) on its own and through the agent: the spec
/// format, the handshake, clear failures for bad inputs, the user switch, status.json.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class SupervisorTests
{
    [Fact]
    public void The_supervisor_is_built_beside_the_agent_and_executable()
    {
        var path = SupervisorHost.ProgramPath;
        Assert.True(File.Exists(path), $"{path} missing: src/Agent's build compiles native/supervisor with gcc");
        Assert.True((File.GetUnixFileMode(path) & UnixFileMode.UserExecute) != 0, $"{path} is not executable");
    }

    [Fact]
    public async Task A_missing_executable_is_reported_by_the_supervisor_with_its_path()
    {
        using var dir = new TempDir();
        var launch = Launch(dir.Path, "nofile");
        var spec = Spec(launch, "/nonexistent/dir/tool");
        var e = await Assert.ThrowsAsync<TaskLaunchException>(() => new SupervisorLauncher(SupervisorLauncher.DefaultCommand()).StartAsync(launch, spec, "process", CancellationToken.None));
        Assert.Equal(TaskStatus.Types.Reason.ExecutableNotFound, e.Reason);
        Assert.Contains("/nonexistent/dir/tool: no such file (ENOENT)", e.Message);
        var status = Status(launch);
        Assert.Equal("executable_not_found", status.GetProperty("LaunchReason").GetString());
        Assert.Contains("/nonexistent/dir/tool", status.GetProperty("LaunchError").GetString());
        Assert.Equal(JsonValueKind.Null, status.GetProperty("ExitCode").ValueKind);
    }

    [Fact]
    public async Task A_file_without_the_execute_bit_fails_the_task_naming_it()
    {
        await using var h = new AgentHarness();
        var task = AgentHarness.ShellTask("noexec", "");
        task.Command = new CommandInfo { Shell = false, Value = "./script.sh" };
        // The file exists (so the agent's own check passes) but cannot be executed.
        task.Command.Uris.Add(new Sched.V1.Uri { Value = "file://" + WriteScript(h.FetchDir, "script.sh", executable: false), OutputFile = "script.sh" });
        h.Launch(task);
        var end = await h.WaitTerminalAsync("noexec");
        Assert.Equal((TaskState.TaskFailed, TaskStatus.Types.Reason.ExecutableNotFound), (end.State, end.Reason));
        Assert.Contains("sandboxes/fw1/noexec/script.sh: permission denied (EACCES)", end.Message);
        Assert.Contains("chmod +x", end.Message);
        ProcessExecutorTests.AssertNoCgroups(h);
    }

    [Fact]
    public async Task A_missing_supervisor_binary_fails_the_task_as_executor_terminated()
    {
        var h = new AgentHarness();
        await using var _ = h;
        await h.CrashAsync();
        h.Options.SupervisorCommand.Add("/nonexistent/sched-supervisor");
        h.Start();
        h.Launch(AgentHarness.ShellTask("nosup", "true"));
        var end = await h.WaitTerminalAsync("nosup");
        Assert.Equal((TaskState.TaskFailed, TaskStatus.Types.Reason.ExecutorTerminated), (end.State, end.Reason));
        Assert.Contains("cannot start the task supervisor '/nonexistent/sched-supervisor'", end.Message);
        ProcessExecutorTests.AssertNoCgroups(h);
        var runs = Path.Combine(h.WorkDir, "meta", "runs");
        Assert.True(!Directory.Exists(runs) || Directory.GetDirectories(runs).Length == 0, "a run dir was left behind");
    }

    [Fact]
    public async Task A_cgroup_the_task_cannot_join_fails_the_launch_with_the_file_named()
    {
        using var dir = new TempDir();
        var launch = Launch(dir.Path, "nocg");
        var spec = Spec(launch, "/bin/true");
        var missing = Path.Combine(dir.Path, "no-such-cgroup", "cgroup.procs");
        spec.Cgroup = new CgroupLayout("v1", [missing], new Dictionary<string, string>(), []);
        var e = await Assert.ThrowsAsync<TaskLaunchException>(() => new SupervisorLauncher(SupervisorLauncher.DefaultCommand()).StartAsync(launch, spec, "process", CancellationToken.None));
        Assert.Equal(TaskStatus.Types.Reason.ContainerLaunchFailed, e.Reason);
        Assert.Contains($"cannot join cgroup {missing}", e.Message);
        Assert.Equal("cgroup", Status(launch).GetProperty("LaunchReason").GetString());
    }

    [Fact]
    public async Task A_spec_from_another_version_is_refused_clearly()
    {
        using var dir = new TempDir();
        var runDir = Path.Combine(dir.Path, "run");
        Directory.CreateDirectory(runDir);
        await File.WriteAllBytesAsync(Path.Combine(runDir, SupervisorHost.SpecFile), "arg=/bin/true\0cwd=/\0stdout=/dev/null\0stderr=/dev/null\0colour=blue\0"u8.ToArray());
        var (code, stdout) = await RunSupervisorAsync(runDir);
        Assert.Equal(2, code);
        Assert.StartsWith("failed ", stdout);
        Assert.Contains("unknown key 'colour'", stdout);

        await File.WriteAllBytesAsync(Path.Combine(runDir, SupervisorHost.SpecFile), "arg=/bin/true\0cwd=/"u8.ToArray());
        (code, stdout) = await RunSupervisorAsync(runDir);
        Assert.Equal(2, code);
        Assert.Contains("not NUL-terminated", stdout);

        (code, stdout) = await RunSupervisorAsync(Path.Combine(dir.Path, "missing-run-dir"));
        Assert.Equal(2, code);
        Assert.Contains("cannot read the task spec", stdout);
    }

    [NeedsFact(Needs.Root)]
    public async Task The_task_runs_as_the_requested_user_with_its_env_and_the_result_is_recorded()
    {
        using var dir = new TempDir();
        var launch = Launch(dir.Path, "user");
        File.SetUnixFileMode(launch.SandboxDir, (UnixFileMode)0x1ff);
        var spec = Spec(launch, "/bin/sh", "-c", "id -u; echo \"$GREETING\"; exit 7");
        spec.User = "nobody";
        spec.Env["GREETING"] = "hello world\nsecond line";
        var launcher = new SupervisorLauncher(SupervisorLauncher.DefaultCommand());
        var handle = await launcher.StartAsync(launch, spec, "process", CancellationToken.None);
        var result = await launcher.WaitAsync(handle, CancellationToken.None);
        Assert.NotNull(result);
        Assert.Equal((7, false, (string?)null), (result.ExitCode, result.Killed, result.LaunchError));
        Assert.Equal("65534\nhello world\nsecond line\n", await File.ReadAllTextAsync(spec.Stdout));
        Assert.Equal(handle.TaskPid.ToString(System.Globalization.CultureInfo.InvariantCulture), await File.ReadAllTextAsync(Path.Combine(launch.RunDir, SupervisorHost.PidFile)));
        Assert.True(result.FinishedAt > DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 60);

        spec.User = "no-such-user-here";
        var e = await Assert.ThrowsAsync<TaskLaunchException>(() => launcher.StartAsync(Launch(dir.Path, "nouser"), spec, "process", CancellationToken.None));
        Assert.Contains("unknown user 'no-such-user-here'", e.Message);
    }

    [NeedsFact(Needs.Cgroup2)]
    public async Task On_cgroup_v2_what_the_task_leaves_behind_is_killed_and_its_cgroup_removed()
    {
        var v2 = CgroupFiles.Mounts().V2 ?? throw new InvalidOperationException("NeedsFact checked the cgroup2 mount");
        using var dir = new TempDir();
        var launcher = new SupervisorLauncher(SupervisorLauncher.DefaultCommand());
        var parent = Path.Combine(v2, "sched", "supervisor-test-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(parent);
        try
        {
            // 1. The main process exits leaving a background child: the supervisor kills it.
            var launch = Launch(dir.Path, "v2");
            var cgroup = Path.Combine(parent, launch.ContainerId);
            Directory.CreateDirectory(cgroup);
            var spec = Spec(launch, "/bin/sh", "-c", "sleep 1000 & echo $! > bg; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 3");
            spec.Cgroup = new CgroupLayout("v2", [Path.Combine(cgroup, "cgroup.procs")], new Dictionary<string, string> { ["unified"] = cgroup }, [cgroup]);
            var handle = await launcher.StartAsync(launch, spec, "process", CancellationToken.None);
            var result = await launcher.WaitAsync(handle, CancellationToken.None);
            Assert.NotNull(result);
            Assert.Equal(3, result.ExitCode);
            Assert.True(result.CpuUserSeconds + result.CpuSystemSeconds > 0, "no cpu time recorded from cpu.stat");
            var bg = int.Parse((await File.ReadAllTextAsync(Path.Combine(launch.SandboxDir, "bg"))).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            Assert.False(Native.ProcFs.Stat(bg) is { Alive: true }, $"the task's background process {bg} survived it");
            Assert.False(Directory.Exists(cgroup), "the container's cgroup was left behind");

            // 2. A kill of a task ignoring SIGTERM: after the grace the whole cgroup is killed.
            launch = Launch(dir.Path, "v2kill");
            cgroup = Path.Combine(parent, launch.ContainerId);
            Directory.CreateDirectory(cgroup);
            spec = Spec(launch, "/bin/sh", "-c", "trap '' TERM; (trap '' TERM; exec sleep 1000) & echo $! > bg; wait");
            spec.Cgroup = new CgroupLayout("v2", [Path.Combine(cgroup, "cgroup.procs")], new Dictionary<string, string> { ["unified"] = cgroup }, [cgroup]);
            handle = await launcher.StartAsync(launch, spec, "process", CancellationToken.None);
            await Poll.UntilAsync(() => File.Exists(Path.Combine(launch.SandboxDir, "bg")) && new System.IO.FileInfo(Path.Combine(launch.SandboxDir, "bg")).Length > 0, TimeSpan.FromSeconds(20));
            launcher.Kill(handle, TimeSpan.FromSeconds(0.3));
            result = await launcher.WaitAsync(handle, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(20));
            Assert.NotNull(result);
            Assert.True(result.Killed);
            Assert.Equal(9, result.Signal);
            bg = int.Parse((await File.ReadAllTextAsync(Path.Combine(launch.SandboxDir, "bg"))).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            Assert.False(Native.ProcFs.Stat(bg) is { Alive: true }, $"process {bg} survived the kill");
            Assert.False(Directory.Exists(cgroup), "the container's cgroup was left behind");
        }
        finally
        {
            foreach (var d in Directory.GetDirectories(parent))
            {
                Directory.Delete(d);
            }
            Directory.Delete(parent);
        }
    }

    [Fact]
    public void Values_with_NUL_bytes_are_refused_before_anything_starts()
    {
        var spec = new SupervisorSpec { Argv = ["/bin/echo", "a\0b"], WorkingDir = "/", Stdout = "/dev/null", Stderr = "/dev/null" };
        Assert.Contains("NUL byte", Assert.Throws<ArgumentException>(spec.ToRecords).Message);
        spec.Argv = ["/bin/echo"];
        spec.Env["A=B"] = "c";
        Assert.Contains("'A=B'", Assert.Throws<ArgumentException>(spec.ToRecords).Message);
    }

    internal static TaskLaunch Launch(string root, string id)
    {
        var sandbox = Path.Combine(root, "sandboxes", id);
        Directory.CreateDirectory(sandbox);
        var cid = "t" + Guid.NewGuid().ToString("N")[..12];
        return new TaskLaunch(AgentHarness.Framework, new TaskInfo { TaskId = id }, sandbox, Path.Combine(root, "runs", cid), cid);
    }

    internal static SupervisorSpec Spec(TaskLaunch launch, params string[] argv) => new()
    {
        Argv = [.. argv],
        Env = new Dictionary<string, string> { ["PATH"] = "/usr/bin:/bin" },
        WorkingDir = launch.SandboxDir,
        Stdout = Path.Combine(launch.SandboxDir, "stdout"),
        Stderr = Path.Combine(launch.SandboxDir, "stderr"),
        ContainerId = launch.ContainerId,
        GraceSeconds = 1,
    };

    private static JsonElement Status(TaskLaunch launch)
        => JsonDocument.Parse(File.ReadAllText(Path.Combine(launch.RunDir, SupervisorHost.StatusFile))).RootElement;

    private static string WriteScript(string dir, string name, bool executable)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllText(path, "#!/bin/sh\necho ran\n");
        File.SetUnixFileMode(path, executable ? (UnixFileMode)0x1ed : (UnixFileMode)0x1a4);
        return path;
    }

    private static async Task<(int Code, string Stdout)> RunSupervisorAsync(string runDir)
    {
        var psi = new ProcessStartInfo(SupervisorHost.ProgramPath) { RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add("--run-dir");
        psi.ArgumentList.Add(runDir);
        using var p = Process.Start(psi)!;
        var stdout = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
        return (p.ExitCode, stdout);
    }

    internal sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("supervisor-test-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
