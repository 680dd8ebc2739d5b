using Sched.V1;
using Scheduler.Security;

namespace Scheduler.Master.Security;

/// <summary>
/// What one caller may see of the master's answers: frameworks and tasks of its own principal,
/// or of principals an ACL lets it view; agents and roles by their own ACLs. Task environment
/// values are replaced by <see cref="Hidden"/> unless view_task_env allows them.
/// </summary>
public sealed class ViewFilter(MasterSecurity security, Caller caller, IReadOnlyDictionary<string, string> principals)
{
    /// <summary>What a hidden environment value reads as.</summary>
    public const string Hidden = "(hidden)";

    /// <summary>Everything visible: an anonymous master, or a superuser.</summary>
    public bool SeesAll { get; } = security.IsSuperuser(caller);

    private string OwnerOf(string frameworkId) => principals.TryGetValue(frameworkId, out var p) ? p : "";

    public bool Framework(string frameworkId) => SeesAll || security.AllowsOnOwned(caller, AclAction.ViewFramework, OwnerOf(frameworkId));

    public bool Task(string frameworkId) => SeesAll || security.AllowsOnOwned(caller, AclAction.ViewTask, OwnerOf(frameworkId));

    public bool Agent(string agentId) => SeesAll || security.Allows(caller, AclAction.ViewAgent, agentId);

    public bool Role(string role) => SeesAll || security.Allows(caller, AclAction.ViewRole, role);

    /// <summary>The task as the caller may see it: env values hidden unless allowed.</summary>
    public TaskRecord Shown(TaskRecord task)
    {
        ArgumentNullException.ThrowIfNull(task);
        if (SeesAll || task.Info?.Command is not { Env.Count: > 0 } || security.AllowsOnOwned(caller, AclAction.ViewTaskEnv, OwnerOf(task.FrameworkId)))
        {
            return task;
        }
        var copy = task.Clone();
        foreach (var key in copy.Info.Command.Env.Keys.ToList())
        {
            copy.Info.Command.Env[key] = Hidden;
        }
        return copy;
    }

    public GetStateResponse Apply(GetStateResponse state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (SeesAll)
        {
            return state;
        }
        var shown = new GetStateResponse { Master = state.Master };
        shown.Agents.AddRange(state.Agents.Where(a => Agent(a.Info.Id)));
        shown.Frameworks.AddRange(state.Frameworks.Where(f => Framework(f.Info.Id)));
        shown.Tasks.AddRange(state.Tasks.Where(t => Task(t.FrameworkId)).Select(Shown));
        shown.CompletedTasks.AddRange(state.CompletedTasks.Where(t => Task(t.FrameworkId)).Select(Shown));
        shown.Roles.AddRange(state.Roles.Where(r => Role(r.Name)));
        return shown;
    }

    /// <summary>One operator event as the caller may see it; null to leave it out.</summary>
    public OperatorEvent? Apply(OperatorEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (SeesAll)
        {
            return e;
        }
        return e.EventCase switch
        {
            OperatorEvent.EventOneofCase.Subscribed => new OperatorEvent { Subscribed = Apply(e.Subscribed) },
            OperatorEvent.EventOneofCase.TaskAdded => Task(e.TaskAdded.Task.FrameworkId) ? new OperatorEvent { TaskAdded = new() { Task = Shown(e.TaskAdded.Task) } } : null,
            OperatorEvent.EventOneofCase.TaskUpdated => Task(e.TaskUpdated.FrameworkId) ? e : null,
            OperatorEvent.EventOneofCase.AgentAdded => Agent(e.AgentAdded.Agent.Info.Id) ? e : null,
            OperatorEvent.EventOneofCase.AgentRemoved => Agent(e.AgentRemoved.AgentId) ? e : null,
            OperatorEvent.EventOneofCase.FrameworkAdded => Framework(e.FrameworkAdded.Framework.Info.Id) ? e : null,
            OperatorEvent.EventOneofCase.FrameworkUpdated => Framework(e.FrameworkUpdated.Framework.Info.Id) ? e : null,
            OperatorEvent.EventOneofCase.FrameworkRemoved => Framework(e.FrameworkRemoved.Framework.Id) || e.FrameworkRemoved.Framework.Principal == caller.Principal ? e : null,
            _ => e,
        };
    }
}
