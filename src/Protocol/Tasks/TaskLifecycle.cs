using Sched.V1;

namespace Scheduler.Protocol.Tasks;

/// <summary>
/// The task-state rule every participant shares (master, agent, SDK, CLI): which states are
/// final. Written once here so that the master freeing a task's resources, the agent dropping an
/// acknowledged task, and a framework forgetting a task always agree.
/// </summary>
public static class TaskLifecycle
{
    /// <summary>
    /// Whether <paramref name="state"/> is final: the task will not run again and its resources
    /// are free (FINISHED, FAILED, KILLED, ERROR, LOST, DROPPED, GONE, GONE_BY_OPERATOR), as in
    /// Mesos. UNREACHABLE and UNKNOWN are not terminal: the task may come back.
    /// </summary>
    public static bool IsTerminal(TaskState state) => state is TaskState.TaskFinished or TaskState.TaskFailed
        or TaskState.TaskKilled or TaskState.TaskError or TaskState.TaskLost or TaskState.TaskDropped
        or TaskState.TaskGone or TaskState.TaskGoneByOperator;
}
