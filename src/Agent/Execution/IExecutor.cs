using System.Text.Json.Serialization;
using Sched.V1;

namespace Scheduler.Agent.Execution;

/// <summary>
/// Runs tasks of one kind (process, OCI container, mock). Modelled on Nomad's task driver:
/// start, wait, kill (with grace), recover after an agent restart, stats, clean-up.
/// Implementations throw <see cref="TaskLaunchException"/> from <see cref="StartAsync"/> when the
/// task cannot start, naming the cause.
/// </summary>
public interface IExecutor
{
    /// <summary><c>process</c>, <c>oci</c>, <c>mock</c>.</summary>
    string Name { get; }

    ExecutorCapabilities Capabilities { get; }

    /// <summary>Starts the task; returns once it runs.</summary>
    Task<TaskHandle> StartAsync(TaskLaunch launch, CancellationToken cancellationToken);

    /// <summary>Completes when the task has ended, with how it ended.</summary>
    Task<TaskExit> WaitAsync(TaskHandle handle, CancellationToken cancellationToken);

    /// <summary>Asks the task to stop: SIGTERM, then after <paramref name="grace"/> SIGKILL of
    /// everything in its container. Returns once the request is delivered; <see cref="WaitAsync"/>
    /// reports the end.</summary>
    Task KillAsync(TaskHandle handle, TimeSpan grace);

    /// <summary>Re-attaches to a task started before an agent restart. Returns the handle (live or
    /// already ended: <see cref="WaitAsync"/> then reports the recorded end), or null when nothing
    /// is known of it.</summary>
    TaskHandle? Recover(TaskHandle checkpointed);

    /// <summary>Usage now, when the executor can measure it.</summary>
    ResourceStatistics? Stats(TaskHandle handle);

    /// <summary>Releases what the task held (run dir, cgroups, bundle) once it has ended.</summary>
    void Cleanup(TaskHandle handle);
}

/// <summary>What an executor supports.</summary>
public sealed record ExecutorCapabilities(bool Isolation, bool Images, bool SurvivesAgentRestart);

/// <summary>One task to start.</summary>
/// <param name="ContainerId">Unique id of this run (cgroup and runtime container name).</param>
public sealed record TaskLaunch(FrameworkInfo Framework, TaskInfo Task, string SandboxDir, string RunDir, string ContainerId)
{
    /// <summary>The task's persistent volumes: host directory and path relative to the sandbox.
    /// Process tasks see them through links in the sandbox; the OCI executor bind-mounts them.</summary>
    public IReadOnlyList<VolumeMount> Volumes { get; init; } = [];

    /// <summary>The values of the task's secrets: <see cref="SecretValue.Env"/> ones go into its
    /// environment (files are already in the sandbox's <c>.secrets/</c>).</summary>
    public IReadOnlyList<SecretValue> Secrets { get; init; } = [];
}

/// <summary>A persistent volume of a task: its directory on the host, its path relative to the
/// sandbox, and whether the task may only read it (containers honour it; a link cannot).</summary>
public sealed record VolumeMount(string HostPath, string ContainerPath, bool ReadOnly = false);

/// <summary>How a task ended. <paramref name="ExitCode"/> is set when a process exited.</summary>
public sealed record TaskExit(TaskState State, TaskStatus.Types.Reason Reason, string Message, int? ExitCode = null);

/// <summary>The checkpointable identity of a running task (what recovery needs).</summary>
public sealed class TaskHandle
{
    public string Executor { get; set; } = "";

    public string ContainerId { get; set; } = "";

    public string RunDir { get; set; } = "";

    public string SandboxDir { get; set; } = "";

    public int SupervisorPid { get; set; }

    public ulong SupervisorStartTime { get; set; }

    public int TaskPid { get; set; }

    public string BootId { get; set; } = "";

    public double MemLimitMiB { get; set; }

    /// <summary>The supervisor as a child of this agent process (null after recovery).</summary>
    [JsonIgnore]
    public System.Diagnostics.Process? Supervisor { get; set; }

    /// <summary>How long each step of the start took (for measurements; not checkpointed).</summary>
    [JsonIgnore]
    public LaunchSteps Steps { get; } = new();

    /// <summary>Executor-private live state (mock executor).</summary>
    [JsonIgnore]
    public object? State { get; set; }
}

/// <summary>Milliseconds spent in each step of a supervised start.</summary>
public sealed class LaunchSteps
{
    /// <summary>Creating the container's cgroups and writing their limits.</summary>
    public double CgroupMs { get; set; }

    /// <summary>Writing the supervisor's spec.</summary>
    public double SpecMs { get; set; }

    /// <summary>Starting the supervisor process (fork/exec returned).</summary>
    public double SpawnMs { get; set; }

    /// <summary>From the supervisor's start to its handshake (the task exec'd in its cgroups).</summary>
    public double HandshakeMs { get; set; }
}

/// <summary>A task could not be started; the task ends with <see cref="State"/> and <see cref="Reason"/>.</summary>
public sealed class TaskLaunchException(TaskStatus.Types.Reason reason, string message, TaskState state = TaskState.TaskFailed) : Exception(message)
{
    public TaskStatus.Types.Reason Reason { get; } = reason;

    public TaskState State { get; } = state;
}
