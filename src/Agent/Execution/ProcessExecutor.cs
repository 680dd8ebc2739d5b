using Sched.V1;
using Scheduler.Agent.Isolation;
using Scheduler.Agent.Resources;
using Scheduler.Agent.Supervision;

namespace Scheduler.Agent.Execution;

/// <summary>
/// Runs a task's command as a plain process in its sandbox (stdout/stderr files, env, working
/// dir, user), under a supervisor, in its own cgroups when isolation is on.
/// </summary>
public sealed class ProcessExecutor(IIsolator isolator, SupervisorLauncher launcher, AgentOptions options) : SupervisedExecutor(isolator, launcher)
{
    public override string Name => "process";

    public override ExecutorCapabilities Capabilities => new(Isolator is not NoIsolator, false, true);

    public override async Task<TaskHandle> StartAsync(TaskLaunch launch, CancellationToken cancellationToken)
    {
        var task = launch.Task;
        var command = task.Command ?? throw new TaskLaunchException(TaskStatus.Types.Reason.TaskInvalid, "the task has no command; set TaskInfo.command", TaskState.TaskError);
        var workingDir = TaskSandbox.WorkingDirectory(launch.SandboxDir, command.WorkingDir);
        if (!Directory.Exists(workingDir))
        {
            throw new TaskLaunchException(TaskStatus.Types.Reason.SandboxFailed, $"working directory {workingDir} does not exist; fix command.working_dir");
        }
        var user = TaskSandbox.UserOf(command, launch.Framework);
        var stdout = Path.Combine(launch.SandboxDir, "stdout");
        var stderr = Path.Combine(launch.SandboxDir, "stderr");
        TaskSandbox.GiveTo(launch.SandboxDir, user, [stdout, stderr]);
        var env = TaskEnvironment.Build(launch, "/");
        var argv = CommandLine(command, workingDir, env);
        var limits = Limits(task, options);
        IContainerCgroup? cgroup;
        var t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            cgroup = Isolator.Create(launch.ContainerId, limits);
        }
        catch (IsolationException e)
        {
            throw new TaskLaunchException(TaskStatus.Types.Reason.ContainerLaunchFailed, "cannot isolate the task: " + e.Message);
        }
        var cgroupMs = System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        var spec = new SupervisorSpec
        {
            Argv = argv,
            Env = env,
            WorkingDir = workingDir,
            Stdout = stdout,
            Stderr = stderr,
            User = user,
            Cgroup = cgroup is null ? CgroupLayout.None : Isolator.Layout(launch.ContainerId),
            ContainerId = launch.ContainerId,
            GraceSeconds = GraceSeconds(task, options),
        };
        try
        {
            var handle = await Launcher.StartAsync(launch, spec, Name, cancellationToken);
            handle.MemLimitMiB = limits.MemBytes / 1048576.0;
            handle.Steps.CgroupMs = cgroupMs;
            return handle;
        }
        catch
        {
            cgroup?.Destroy();
            throw;
        }
    }

    /// <summary>Resolves the argv: shell commands through /bin/sh -c; otherwise the executable by
    /// path (relative to the working dir) or PATH. A missing executable fails the launch.</summary>
    internal static List<string> CommandLine(CommandInfo command, string workingDir, IReadOnlyDictionary<string, string> env)
    {
        if (command.Shell)
        {
            if (string.IsNullOrWhiteSpace(command.Value))
            {
                throw new TaskLaunchException(TaskStatus.Types.Reason.TaskInvalid, "command.value is empty; give the shell command to run", TaskState.TaskError);
            }
            return ["/bin/sh", "-c", command.Value];
        }
        var program = string.IsNullOrEmpty(command.Value) ? command.Arguments.FirstOrDefault() ?? "" : command.Value;
        if (program.Length == 0)
        {
            throw new TaskLaunchException(TaskStatus.Types.Reason.TaskInvalid, "command.value is empty; give the executable to run", TaskState.TaskError);
        }
        var resolved = Resolve(program, workingDir, env.TryGetValue("PATH", out var path) ? path : "/usr/local/bin:/usr/bin:/bin");
        if (resolved is null)
        {
            var shown = program.Contains('/', StringComparison.Ordinal) ? Path.GetFullPath(Path.Combine(workingDir, program)) : program + " (searched PATH)";
            throw new TaskLaunchException(TaskStatus.Types.Reason.ExecutableNotFound, $"{shown}: no such file; check the command path");
        }
        var argv = new List<string> { resolved };
        // arguments[0] is argv[0] when present (Mesos convention); the resolved path replaces it.
        argv.AddRange(command.Arguments.Skip(1));
        return argv;
    }

    internal static ContainerLimits Limits(TaskInfo task, AgentOptions options)
    {
        var cpus = ResourceText.Scalar(task.Resources, "cpus");
        var mem = ResourceText.Scalar(task.Resources, "mem");
        return new ContainerLimits(cpus, (long)(mem * 1048576), options.TaskPidsLimit);
    }

    internal static double GraceSeconds(TaskInfo task, AgentOptions options)
        => task.KillPolicy is { GracePeriodSeconds: > 0 } k ? k.GracePeriodSeconds : options.DefaultKillGrace.TotalSeconds;

    private static string? Resolve(string program, string workingDir, string path)
    {
        if (program.Contains('/', StringComparison.Ordinal))
        {
            var full = Path.GetFullPath(Path.Combine(workingDir, program));
            return File.Exists(full) ? full : null;
        }
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, program);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }
}
