using Sched.V1;
using Scheduler.Master.State;
using Scheduler.Master.Validation;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Loop;

/// <summary>The checks of one task of a LAUNCH operation (pure: no master state is changed).</summary>
internal static class LaunchChecks
{
    /// <summary>Checks one task of a LAUNCH against what is left of the offers; on success takes
    /// its resources out of <paramref name="remaining"/>.</summary>
    public static TaskStep PlanTask(FrameworkEntry fw, TaskBook tasks, TaskInfo task, string agentId, HashSet<string> inCall, Dictionary<string, ResourceBag> remaining, Security.MasterSecurity security)
    {
        var (problem, reason) = CheckTask(fw, tasks, task, agentId, inCall);
        if (problem is null)
        {
            (problem, reason) = CheckUser(fw, task, security);
        }
        string? role = null;
        if (problem is null)
        {
            var wanted = task.Resources.Select(r => r.AllocationRole).FirstOrDefault(r => r.Length > 0);
            var candidates = wanted is not null ? remaining.Where(p => p.Key == wanted) : remaining;
            string? shortfall = wanted is not null && !remaining.ContainsKey(wanted)
                ? $"the task's resources name allocation_role '{wanted}' but the offers are for {string.Join(", ", remaining.Keys)}"
                : null;
            foreach (var (r, bag) in candidates)
            {
                shortfall = bag.FindShortfall(task.Resources);
                if (shortfall is null)
                {
                    role = r;
                    break;
                }
            }
            if (role is null)
            {
                problem = $"task '{task.TaskId}' needs more than the accepted offers hold ({shortfall}); ask for at most what the offers contain, minus earlier tasks and operations of this call";
                reason = TaskStatus.Types.Reason.ResourcesExceeded;
            }
        }
        inCall.Add(task.TaskId);
        if (problem is not null)
        {
            return new TaskStep(task, null, problem, reason);
        }
        remaining[role!].Subtract(task.Resources);
        return new TaskStep(task, role, null, TaskStatus.Types.Reason.Unspecified);
    }

    /// <summary>Whether the framework's principal may run the task as its OS user (the task's
    /// command.user, else the framework's user, else the agent's own user, taken as root). Mock
    /// tasks run no process and need no user.</summary>
    private static (string? Problem, TaskStatus.Types.Reason Reason) CheckUser(FrameworkEntry fw, TaskInfo task, Security.MasterSecurity security)
    {
        if (!security.Enforced || task.Container?.Type == ContainerInfo.Types.Type.Mock)
        {
            return (null, TaskStatus.Types.Reason.Unspecified);
        }
        var user = task.Command?.User is { Length: > 0 } u ? u : fw.Info.User;
        var principal = new Scheduler.Security.Caller(fw.Info.Principal, Scheduler.Security.CallerKind.Token);
        if (security.Allows(principal, Scheduler.Security.AclAction.RunTask, user))
        {
            return (null, TaskStatus.Types.Reason.Unspecified);
        }
        var hint = user.Length == 0 ? "; set command.user (or FrameworkInfo.user) to an unprivileged user, or" : "; run it as another user, or";
        return ($"task '{task.TaskId}': {security.Authorizer.Denied(principal, Scheduler.Security.AclAction.RunTask, user)}{hint} ask an operator for a run_task rule", TaskStatus.Types.Reason.TaskUnauthorized);
    }

    /// <summary>Checks one task before resources; null when fine.</summary>
    private static (string? Problem, TaskStatus.Types.Reason Reason) CheckTask(FrameworkEntry fw, TaskBook tasks, TaskInfo task, string agentId, HashSet<string> inCall)
    {
        var invalid = TaskStatus.Types.Reason.TaskInvalid;
        if (string.IsNullOrWhiteSpace(task.TaskId))
        {
            return ("task_id is required: give every task an id unique within the framework", invalid);
        }
        if (tasks.IsLive(fw.Id, task.TaskId) || inCall.Contains(task.TaskId))
        {
            return ($"task id '{task.TaskId}' is already used by a live task of this framework; choose a unique task id", TaskStatus.Types.Reason.DuplicateTaskId);
        }
        if (task.AgentId != agentId)
        {
            return ($"task '{task.TaskId}' has agent_id '{task.AgentId}' but the offers are on agent {agentId}; set agent_id to the offers' agent", invalid);
        }
        var isMock = task.Container?.Type == ContainerInfo.Types.Type.Mock;
        var isOci = task.Container?.Type == ContainerInfo.Types.Type.Oci && !string.IsNullOrEmpty(task.Container.Oci?.Image);
        if (!isMock && !isOci && string.IsNullOrWhiteSpace(task.Command?.Value))
        {
            return ($"task '{task.TaskId}' has no command: set command.value (or use container.type MOCK)", invalid);
        }
        if (task.Resources.Count == 0)
        {
            return ($"task '{task.TaskId}' has no resources: give at least cpus or mem from the offers", invalid);
        }
        if (ResourceChecks.Validate(task.Resources) is { } bad)
        {
            return ($"task '{task.TaskId}': {bad}", invalid);
        }
        return (null, TaskStatus.Types.Reason.Unspecified);
    }
}
