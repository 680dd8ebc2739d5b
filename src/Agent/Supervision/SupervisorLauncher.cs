using System.Diagnostics;
using System.Globalization;
using Sched.V1;
using Scheduler.Agent.Execution;
using Scheduler.Agent.Native;

namespace Scheduler.Agent.Supervision;

/// <summary>
/// Agent side of supervisors: starts one for a task (the native <c>sched-supervisor</c> beside the
/// agent's assembly, or <see cref="AgentOptions.SupervisorCommand"/>), waits for it, kills through
/// it, re-adopts it after an agent restart, and turns its <c>status.json</c> into a
/// <see cref="TaskExit"/>.
/// <para>
/// With a pool (<paramref name="poolSize"/> &gt; 0) a few supervisors are started ahead of need
/// (<c>--pool</c>) and wait for their run dir on stdin, which takes the supervisor's own process
/// start off the launch path; the pool refills in the background. Idle pooled supervisors end
/// when their stdin closes (the launcher is disposed or the agent dies).
/// </para>
/// </summary>
public sealed class SupervisorLauncher(IReadOnlyList<string> command, int poolSize = 0) : IDisposable
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<Pooled> _idle = new();
    private int _filling;
    private volatile bool _disposed;

    /// <summary>The command that starts a supervisor when none is configured.</summary>
    public static List<string> DefaultCommand() => [SupervisorHost.ProgramPath];

    /// <summary>Starts the pool's supervisors (no-op without a pool).</summary>
    public void Prefill() => Refill();

    public void Dispose()
    {
        _disposed = true;
        while (_idle.TryDequeue(out var p))
        {
            Retire(p);
        }
    }

    /// <summary>Writes the spec, starts the supervisor and waits for its handshake.</summary>
    public async Task<TaskHandle> StartAsync(TaskLaunch launch, SupervisorSpec spec, string executor, CancellationToken cancellationToken)
    {
        byte[] records;
        try
        {
            records = spec.ToRecords();
        }
        catch (ArgumentException e)
        {
            throw new TaskLaunchException(TaskStatus.Types.Reason.TaskInvalid, e.Message + "; fix the task's command", TaskState.TaskError);
        }
        var t0 = Stopwatch.GetTimestamp();
        Directory.CreateDirectory(launch.RunDir);
        // No fsync: the supervisor reads the spec at once, and after a host crash (the only case
        // where it could be lost) the boot id changes and no task of the old boot is re-adopted.
        // Synchronous: a small write to the page cache costs less than a thread-pool hop.
        File.WriteAllBytes(Path.Combine(launch.RunDir, SupervisorHost.SpecFile), records);
        var t1 = Stopwatch.GetTimestamp();
        Process process;
        ulong startTime;
        if (TakeIdle(launch.RunDir) is { } pooled)
        {
            (process, startTime) = (pooled.Process, pooled.StartTime);
        }
        else
        {
            try
            {
                process = Spawn(["--run-dir", launch.RunDir], launch.RunDir, stdin: false);
            }
            catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
            {
                throw new TaskLaunchException(TaskStatus.Types.Reason.ExecutorTerminated,
                    $"cannot start the task supervisor '{command[0]}': {e.Message}; the agent installation is incomplete (sched-supervisor is built and installed with the agent)");
            }
            startTime = ProcFs.Stat(process.Id)?.StartTime ?? 0;
        }
        var t2 = Stopwatch.GetTimestamp();
        var line = await process.StandardOutput.ReadLineAsync(cancellationToken) ?? "";
        process.StandardOutput.Close();
        var t3 = Stopwatch.GetTimestamp();
        // Refilled after the handshake, so the new supervisor's start does not compete with it.
        Refill();
        if (!line.StartsWith("started ", StringComparison.Ordinal))
        {
            await process.WaitForExitAsync(cancellationToken);
            if (!line.StartsWith("failed ", StringComparison.Ordinal))
            {
                throw new TaskLaunchException(TaskStatus.Types.Reason.ExecutorTerminated,
                    $"the task supervisor '{command[0]}' exited with {process.ExitCode} before starting the task{(line.Length > 0 ? ": " + line : "")}");
            }
            var recorded = AtomicFile.ReadJson(Path.Combine(launch.RunDir, SupervisorHost.StatusFile), SupervisorJson.Default.SupervisorResult);
            var reason = recorded?.LaunchReason switch
            {
                "executable_not_found" or "not_executable" => TaskStatus.Types.Reason.ExecutableNotFound,
                _ => TaskStatus.Types.Reason.ContainerLaunchFailed,
            };
            throw new TaskLaunchException(reason, $"cannot start the task: {line["failed ".Length..]}");
        }
        var handle = new TaskHandle
        {
            Executor = executor,
            ContainerId = launch.ContainerId,
            RunDir = launch.RunDir,
            SandboxDir = launch.SandboxDir,
            SupervisorPid = process.Id,
            SupervisorStartTime = startTime,
            TaskPid = int.Parse(line["started ".Length..], CultureInfo.InvariantCulture),
            BootId = ProcFs.BootId(),
            Supervisor = process,
        };
        handle.Steps.SpecMs = Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds;
        handle.Steps.SpawnMs = Stopwatch.GetElapsedTime(t1, t2).TotalMilliseconds;
        handle.Steps.HandshakeMs = Stopwatch.GetElapsedTime(t2, t3).TotalMilliseconds;
        return handle;
    }

    private Process Spawn(IEnumerable<string> args, string workingDir, bool stdin)
    {
        var psi = new ProcessStartInfo(command[0])
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardInput = stdin,
            RedirectStandardError = false,
            WorkingDirectory = workingDir,
        };
        foreach (var arg in command.Skip(1).Concat(args))
        {
            psi.ArgumentList.Add(arg);
        }
        return Process.Start(psi) ?? throw new InvalidOperationException("Process.Start returned null");
    }

    /// <summary>An idle pooled supervisor, handed its run dir; null when none is left.</summary>
    private Pooled? TakeIdle(string runDir)
    {
        while (_idle.TryDequeue(out var p))
        {
            try
            {
                p.Process.StandardInput.Write(runDir + "\n");
                p.Process.StandardInput.Close();
                return p;
            }
            catch (IOException)
            {
                // It died while idle (killed by someone): use another one.
                p.Process.Dispose();
            }
        }
        return null;
    }

    private void Refill()
    {
        if (poolSize <= 0 || _disposed || Interlocked.CompareExchange(ref _filling, 1, 0) != 0)
        {
            return;
        }
        _ = Task.Run(() =>
        {
            try
            {
                while (!_disposed && _idle.Count < poolSize)
                {
                    var process = Spawn(["--pool"], "/", stdin: true);
                    _idle.Enqueue(new Pooled(process, ProcFs.Stat(process.Id)?.StartTime ?? 0));
                }
                if (_disposed)
                {
                    Dispose();
                }
            }
            catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
            {
                // No pool then: each launch starts its supervisor and reports why it could not.
            }
            finally
            {
                Volatile.Write(ref _filling, 0);
            }
        });
    }

    private static void Retire(Pooled p)
    {
        try
        {
            p.Process.StandardInput.Close();
        }
        catch (IOException)
        {
        }
        p.Process.Dispose();
    }

    private sealed record Pooled(Process Process, ulong StartTime);

    /// <summary>Waits until the supervisor has exited, then reads the recorded result.</summary>
    public async Task<SupervisorResult?> WaitAsync(TaskHandle handle, CancellationToken cancellationToken)
    {
        if (handle.Supervisor is { } process)
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        else
        {
            // Re-adopted after an agent restart: not our child, so poll its /proc entry.
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
            while (ProcFs.IsAlive(handle.SupervisorPid, handle.SupervisorStartTime))
            {
                await timer.WaitForNextTickAsync(cancellationToken);
            }
        }
        return AtomicFile.ReadJson(Path.Combine(handle.RunDir, SupervisorHost.StatusFile), SupervisorJson.Default.SupervisorResult);
    }

    /// <summary>Asks the supervisor to kill its task with this grace.</summary>
    public void Kill(TaskHandle handle, TimeSpan grace)
    {
        File.WriteAllText(Path.Combine(handle.RunDir, SupervisorHost.KillRequestFile), grace.TotalSeconds.ToString("R", CultureInfo.InvariantCulture));
        if (ProcFs.IsAlive(handle.SupervisorPid, handle.SupervisorStartTime))
        {
            _ = Libc.kill(handle.SupervisorPid, Libc.SIGTERM);
        }
    }

    /// <summary>Whether a checkpointed supervisor is still there (same boot, same pid and start
    /// time) or has left its result.</summary>
    public static bool CanRecover(TaskHandle handle)
        => handle.BootId == ProcFs.BootId()
           && (ProcFs.IsAlive(handle.SupervisorPid, handle.SupervisorStartTime) || File.Exists(Path.Combine(handle.RunDir, SupervisorHost.StatusFile)));

    /// <summary>Turns a supervisor result into a task end.</summary>
    public static TaskExit ToExit(SupervisorResult? result, double memLimitMiB)
    {
        if (result is null)
        {
            return new TaskExit(TaskState.TaskFailed, TaskStatus.Types.Reason.ExecutorTerminated,
                "the task's supervisor ended without recording how the task ended (was it killed?); the task's state is unknown");
        }
        if (result.LaunchError is not null)
        {
            return new TaskExit(TaskState.TaskFailed, TaskStatus.Types.Reason.ContainerLaunchFailed, "cannot start the task: " + result.LaunchError);
        }
        if (result.OomKilled)
        {
            var limit = result.MemLimitBytes > 0 ? result.MemLimitBytes / 1048576.0 : memLimitMiB;
            return new TaskExit(TaskState.TaskFailed, TaskStatus.Types.Reason.ContainerLimitationMemory,
                string.Create(CultureInfo.InvariantCulture, $"out of memory: the task reached its memory limit of {limit:0.#} MiB (peak {result.MemPeakBytes / 1048576.0:0.#} MiB) and was killed; give it more mem"),
                result.ExitCode);
        }
        if (result.Killed)
        {
            return new TaskExit(TaskState.TaskKilled, TaskStatus.Types.Reason.Unspecified, "the task was killed", result.ExitCode);
        }
        if (result.ExitCode == 0)
        {
            return new TaskExit(TaskState.TaskFinished, TaskStatus.Types.Reason.Unspecified, "the command exited with status 0", 0);
        }
        if (result.Signal is { } sig)
        {
            return new TaskExit(TaskState.TaskFailed, TaskStatus.Types.Reason.CommandExitedNonzero, $"the command was terminated by signal {sig}", result.ExitCode);
        }
        return new TaskExit(TaskState.TaskFailed, TaskStatus.Types.Reason.CommandExitedNonzero, $"the command exited with status {result.ExitCode}", result.ExitCode);
    }
}
