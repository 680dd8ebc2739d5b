using Sched.V1;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Loop;

/// <summary>One step of a planned Accept: a task (launched under Role, or refused with Problem)
/// or a resource conversion.</summary>
internal sealed record TaskStep(TaskInfo? Task, string? Role, string? Problem, TaskStatus.Types.Reason Reason)
{
    public Conversion? Conversion { get; init; }
}

/// <summary>A validated operation: <see cref="From"/> of the offer (allocated to
/// <see cref="Role"/>) becomes <see cref="To"/>; <see cref="Operation"/> is what the agent gets.</summary>
internal sealed record Conversion(string Role, List<Resource> From, List<Resource> To, Operation Operation);
