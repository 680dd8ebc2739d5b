using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Scheduler.Agent.Isolation;
using Scheduler.Agent.Native;

namespace Scheduler.Agent.Supervision;

/// <summary>
/// Supervisor mode of the agent binary (<c>schedctl agent supervise --run-dir DIR</c>): one small
/// process per task that starts the task in its cgroups, owns it, and records how it ended in
/// <c>DIR/status.json</c>. It runs in its own session so it outlives the agent (a restarted agent
/// re-adopts it by pid and start time).
/// <para>
/// Protocol with the agent: the supervisor prints one line on stdout — <c>started PID</c> or
/// <c>failed MESSAGE</c> — then moves its stdout/stderr to <c>DIR/supervisor.log</c>. A kill is a
/// SIGTERM to the supervisor, optionally preceded by <c>DIR/kill.request</c> holding the grace
/// period in seconds: the task's process group gets SIGTERM, and after the grace the whole
/// container is killed.
/// </para>
/// </summary>
public static class SupervisorHost
{
    public const string SpecFile = "spec.json";
    public const string StatusFile = "status.json";
    public const string PidFile = "task.pid";
    public const string KillRequestFile = "kill.request";
    public const string LogFile = "supervisor.log";

    // Joins the container's cgroups (argument list of cgroup.procs files) then execs the task, so
    // the task is inside its limits before its first instruction.
    private const string JoinScript = "n=$1; shift; while [ \"$n\" -gt 0 ]; do echo $$ > \"$1\" || exit 125; shift; n=$((n-1)); done; exec \"$@\"";

    /// <summary>Runs a supervisor. <paramref name="args"/>: <c>[agent] supervise --run-dir DIR</c>.</summary>
    /// <returns>0 when the task ran (whatever its exit status), 2 on bad arguments, 1 when it
    /// could not be started.</returns>
    public static async Task<int> RunAsync(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var i = Array.IndexOf(args, "--run-dir");
        if (i < 0 || i + 1 >= args.Length)
        {
            await Console.Error.WriteLineAsync("usage: agent supervise --run-dir DIR");
            return 2;
        }
        var runDir = args[i + 1];
        _ = Libc.setsid();
        var spec = AtomicFile.ReadJson(Path.Combine(runDir, SpecFile), SupervisorJson.Default.SupervisorSpec);
        if (spec is null)
        {
            Handshake($"failed cannot read {Path.Combine(runDir, SpecFile)}");
            return 2;
        }

        IContainerCgroup? cgroup = null;
        int pid;
        try
        {
            // For OCI tasks the runtime creates the cgroup itself: it is opened once the task ran.
            cgroup = spec.JoinCgroups ? Isolators.ByName(spec.Isolator, spec.Scope).Open(spec.ContainerId) : null;
            pid = Libc.SpawnInNewSession(BuildArgv(spec, cgroup), spec.Env.Select(kv => kv.Key + "=" + kv.Value).ToList(), spec.WorkingDir, spec.Stdout, spec.Stderr);
        }
        catch (Exception e)
        {
            cgroup?.Destroy();
            var failed = new SupervisorResult { LaunchError = e.Message, FinishedAt = Now() };
            AtomicFile.WriteJson(Path.Combine(runDir, StatusFile), failed, SupervisorJson.Default.SupervisorResult);
            Handshake("failed " + e.Message.Replace('\n', ' '));
            return 1;
        }
        AtomicFile.Write(Path.Combine(runDir, PidFile), System.Text.Encoding.ASCII.GetBytes(pid.ToString(CultureInfo.InvariantCulture)));
        Handshake($"started {pid}");
        DetachStdio(Path.Combine(runDir, LogFile));

        var supervisor = new Supervision(runDir, spec, pid, cgroup);
        return await supervisor.RunAsync();
    }

    internal static List<string> BuildArgv(SupervisorSpec spec, IContainerCgroup? cgroup)
    {
        var command = new List<string>();
        if (!string.IsNullOrEmpty(spec.User) && Libc.geteuid() == 0 && spec.User != "root")
        {
            command.AddRange(["/usr/bin/setpriv", "--reuid", spec.User, "--regid", spec.User, "--init-groups", "--"]);
        }
        command.AddRange(spec.Argv);
        if (cgroup is null || !spec.JoinCgroups)
        {
            return command;
        }
        var argv = new List<string> { "/bin/sh", "-c", JoinScript, "sched-join", cgroup.ProcsFiles.Count.ToString(CultureInfo.InvariantCulture) };
        argv.AddRange(cgroup.ProcsFiles);
        argv.AddRange(command);
        return argv;
    }

    private static void Handshake(string line)
    {
        Console.Out.WriteLine(line);
        Console.Out.Flush();
    }

    /// <summary>Moves stdin/stdout/stderr off the agent's pipe so the supervisor survives the agent.</summary>
    private static void DetachStdio(string logPath)
    {
        var log = Libc.open(logPath, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_APPEND, 0x1a4);
        var devNull = Libc.open("/dev/null", Libc.O_RDONLY, 0);
        if (devNull >= 0)
        {
            _ = Libc.dup2(devNull, 0);
            _ = Libc.close(devNull);
        }
        if (log >= 0)
        {
            _ = Libc.dup2(log, 1);
            _ = Libc.dup2(log, 2);
            _ = Libc.close(log);
        }
    }

    internal static double Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

    /// <summary>The running part of a supervisor: waits for the task, handles kills, records the end.</summary>
    private sealed class Supervision(string runDir, SupervisorSpec spec, int pid, IContainerCgroup? joined)
    {
        private IContainerCgroup? Cgroup => joined ?? (spec.Isolator == "none" ? null : Isolators.ByName(spec.Isolator, spec.Scope).Open(spec.ContainerId));

        private readonly TaskCompletionSource<int> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _killRequested;

        public async Task<int> RunAsync()
        {
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnKill);
            using var hup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => c.Cancel = true);
            using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => c.Cancel = true);
            var waiter = new Thread(Wait) { IsBackground = true, Name = "task-wait" };
            waiter.Start();
            var status = await _exited.Task;

            // The main process is gone; anything it left in the container goes too (no orphans).
            var cgroup = Cgroup;
            cgroup?.KillAll();
            _ = Libc.kill(-pid, Libc.SIGKILL);
            var stats = cgroup?.Statistics();
            var result = new SupervisorResult
            {
                Killed = Volatile.Read(ref _killRequested) != 0,
                OomKilled = cgroup is not null && cgroup.OomKills() > 0,
                MemPeakBytes = stats?.MemPeakBytes ?? 0,
                MemLimitBytes = stats?.MemLimitBytes ?? 0,
                CpuUserSeconds = stats?.CpuUserSeconds ?? 0,
                CpuSystemSeconds = stats?.CpuSystemSeconds ?? 0,
                FinishedAt = Now(),
            };
            if (Libc.WIfExited(status))
            {
                result.ExitCode = Libc.WExitStatus(status);
            }
            else if (Libc.WIfSignaled(status))
            {
                result.Signal = Libc.WTermSig(status);
                result.ExitCode = 128 + result.Signal;
            }
            if (spec.Runtime is not null)
            {
                DeleteContainer();
            }
            try
            {
                cgroup?.Destroy();
            }
            catch (IsolationException e)
            {
                await Console.Error.WriteLineAsync($"supervisor: {e.Message}");
            }
            AtomicFile.WriteJson(Path.Combine(runDir, StatusFile), result, SupervisorJson.Default.SupervisorResult);
            return 0;
        }

        /// <summary>Removes the runtime's state of the container (<c>runc delete --force</c>).</summary>
        private void DeleteContainer()
        {
            try
            {
                var psi = new ProcessStartInfo(spec.Runtime!) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
                foreach (var a in new[] { "--root", spec.RuntimeRoot ?? "/run/runc", "delete", "--force", spec.ContainerId })
                {
                    psi.ArgumentList.Add(a);
                }
                using var p = Process.Start(psi);
                p?.WaitForExit(10000);
            }
            catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
            {
                Console.Error.WriteLine($"supervisor: cannot delete container {spec.ContainerId}: {e.Message}");
            }
        }

        private void Wait()
        {
            while (true)
            {
                var rc = Libc.waitpid(pid, out var status, 0);
                if (rc == pid)
                {
                    _exited.TrySetResult(status);
                    return;
                }
                var errno = Marshal.GetLastPInvokeError();
                if (rc < 0 && errno != Libc.EINTR)
                {
                    // Not our child any more (cannot happen unless reaped elsewhere): report unknown.
                    _exited.TrySetResult(0x7f00);
                    return;
                }
            }
        }

        private void OnKill(PosixSignalContext context)
        {
            context.Cancel = true;
            if (Interlocked.Exchange(ref _killRequested, 1) != 0)
            {
                return;
            }
            var grace = spec.GraceSeconds;
            var text = File.Exists(Path.Combine(runDir, KillRequestFile)) ? File.ReadAllText(Path.Combine(runDir, KillRequestFile)).Trim() : "";
            if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var requested) && requested >= 0)
            {
                grace = requested;
            }
            _ = Task.Run(async () =>
            {
                _ = Libc.kill(-pid, Libc.SIGTERM);
                var cgroup = Cgroup;
                if (cgroup is not null)
                {
                    foreach (var p in cgroup.Pids())
                    {
                        _ = Libc.kill(p, Libc.SIGTERM);
                    }
                }
                var exited = await Task.WhenAny(_exited.Task, Task.Delay(TimeSpan.FromSeconds(grace))) == _exited.Task;
                if (!exited)
                {
                    cgroup?.KillAll();
                    _ = Libc.kill(-pid, Libc.SIGKILL);
                }
            });
        }
    }
}
