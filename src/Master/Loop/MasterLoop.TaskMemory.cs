using Sched.V1;
using Scheduler.Master.State;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Loop;

/// <summary>
/// What the master keeps per task, kept small: at 100,000 tasks every object and string copied
/// per task costs megabytes. A live task is one <see cref="TaskRecord"/> that shares its strings
/// (ids, name, status message) and its resources with other tasks, holds the launched
/// <see cref="TaskInfo"/> as parsed from the Accept (not a clone), no copy of the labels and no
/// status until the agent reports one. Operators get full copies built on demand
/// (<see cref="TaskView"/>), which also keeps the loop's live objects out of responses serialized
/// on other threads.
/// </summary>
public sealed partial class MasterLoop
{
    private readonly SharedResources _sharedResources = new();
    private readonly StringPool _strings = new();

    /// <summary>The task as it will be kept and sent to the agent: the parsed request object itself
    /// (the loop owns it once the call is decoded), with shared strings and pooled resources
    /// carrying the allocation role.</summary>
    private TaskInfo CompactLaunched(TaskInfo info, string agentId, string role)
    {
        info.AgentId = agentId; // equal (checked), now the agent's own string
        info.Name = _strings.Intern(info.Name);
        for (var i = 0; i < info.Resources.Count; i++)
        {
            info.Resources[i] = _sharedResources.Intern(info.Resources[i], role);
        }
        return info;
    }

    /// <summary>Makes an incoming status share the strings the master already holds.</summary>
    private void CompactStatus(TaskStatus status, TaskRecord task, AgentEntry agent, FrameworkEntry fw)
    {
        if (status.TaskId == task.TaskId)
        {
            status.TaskId = task.TaskId;
        }
        if (status.AgentId == agent.Id)
        {
            status.AgentId = agent.Id;
        }
        if (status.FrameworkId == fw.Id)
        {
            status.FrameworkId = fw.Id;
        }
        status.Message = _strings.Intern(status.Message);
    }

    /// <summary>A full, independent copy of a task for operators: labels filled from the task
    /// info, and a staging status when the agent has not reported yet.</summary>
    private static TaskRecord TaskView(TaskRecord task)
    {
        var view = task.Clone();
        if (view.Labels.Count == 0 && view.Info is { } info)
        {
            view.Labels.Add(info.Labels);
        }
        view.Status ??= new TaskStatus
        {
            TaskId = task.TaskId,
            AgentId = task.AgentId,
            FrameworkId = task.FrameworkId,
            State = task.State,
            Source = TaskStatus.Types.Source.Master,
            Message = task.State == TaskState.TaskStaging ? "launch sent to the agent" : "",
        };
        return view;
    }
}
