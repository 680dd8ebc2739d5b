using Sched.V1;
using Scheduler.Protocol.Tasks;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.FrameworkSdk;

/// <summary>Facts about task states that every framework needs.</summary>
public static class TaskStates
{
    /// <summary>
    /// Whether <paramref name="state"/> is final: the task will not run again and its resources
    /// are free (FINISHED, FAILED, KILLED, ERROR, LOST, DROPPED, GONE, GONE_BY_OPERATOR).
    /// UNREACHABLE and UNKNOWN are not terminal: the task may come back.
    /// </summary>
    /// <param name="state">A task state.</param>
    public static bool IsTerminal(this TaskState state) => TaskLifecycle.IsTerminal(state);

    /// <summary>Whether the task is (or may still be) active: STAGING, STARTING, RUNNING, KILLING.</summary>
    /// <param name="state">A task state.</param>
    public static bool IsActive(this TaskState state) => state is TaskState.TaskStaging or TaskState.TaskStarting
        or TaskState.TaskRunning or TaskState.TaskKilling;

    /// <summary>Whether this update must be acknowledged (it carries a uuid).</summary>
    /// <param name="status">A status update.</param>
    public static bool NeedsAcknowledgement(this TaskStatus status) =>
        status is not null && !string.IsNullOrEmpty(status.Uuid);

    /// <summary>
    /// A short human form of a state: <c>TASK_FAILED</c> → <c>failed</c>.
    /// </summary>
    /// <param name="state">A task state.</param>
    public static string ShortName(this TaskState state) => state switch
    {
        TaskState.TaskStaging => "staging",
        TaskState.TaskStarting => "starting",
        TaskState.TaskRunning => "running",
        TaskState.TaskKilling => "killing",
        TaskState.TaskFinished => "finished",
        TaskState.TaskFailed => "failed",
        TaskState.TaskKilled => "killed",
        TaskState.TaskError => "error",
        TaskState.TaskLost => "lost",
        TaskState.TaskDropped => "dropped",
        TaskState.TaskUnreachable => "unreachable",
        TaskState.TaskGone => "gone",
        TaskState.TaskGoneByOperator => "gone-by-operator",
        TaskState.TaskUnknown => "unknown",
        _ => "unspecified",
    };
}
