using Sched.V1;
using Scheduler.Agent.Execution;

namespace Scheduler.Agent;

/// <summary>One task the agent runs (or has run and holds unacknowledged updates for).</summary>
public sealed class RunningTask(FrameworkInfo framework, TaskInfo info, string containerId, IExecutor executor)
{
    public FrameworkInfo Framework { get; } = framework;

    public TaskInfo Info { get; } = info;

    public string ContainerId { get; } = containerId;

    public IExecutor Executor { get; } = executor;

    public TaskHandle? Handle { get; set; }

    /// <summary>The values of the task's secrets, from the launch (memory only: never checkpointed).</summary>
    public IReadOnlyList<SecretValue> Secrets { get; init; } = [];

    public bool Ended { get; set; }

    public TaskStatus.Types.Reason? KillReason { get; set; }

    /// <summary>A kill that arrived while the task was starting.</summary>
    public TimeSpan? PendingKillGrace { get; set; }

    public bool? Healthy { get; set; }

    public DateTimeOffset? AcknowledgedTerminalAt { get; set; }

    public string SandboxDir(string sandboxes) => Path.Combine(sandboxes, Framework.Id, Info.TaskId);
}
