namespace Scheduler.Security;

/// <summary>What an ACL object names for an action.</summary>
public enum ObjectKind
{
    /// <summary>A role; hierarchical: <c>eng</c> covers <c>eng</c> and <c>eng/…</c>, <c>eng/*</c> only the children.</summary>
    Role,

    /// <summary>An OS user tasks run as. <c>*</c> covers every user but root, which must be named.</summary>
    User,

    /// <summary>The principal that owns the object (a framework's, a task's framework's, a reservation's).</summary>
    Principal,

    /// <summary>An agent id.</summary>
    Agent,
}

/// <summary>The actions ACLs grant, in Mesos' vocabulary.</summary>
public enum AclAction
{
    RegisterFramework,
    RunTask,
    TeardownFramework,
    KillTask,
    ViewFramework,
    ViewTask,
    ViewTaskEnv,
    AccessSandbox,
    ViewAgent,
    ViewRole,
    UpdateQuota,
    UpdateWeights,
    Reserve,
    Unreserve,
    DrainAgent,
    MarkAgentGone,
    RegisterAgent,
    CreateToken,
    ManageSecrets,
    ManageJobs,
}

/// <summary>Names and object kinds of <see cref="AclAction"/>.</summary>
public static class AclActions
{
    private static readonly (AclAction Action, string Name, ObjectKind Kind, string Meaning)[] Table =
    [
        (AclAction.RegisterFramework, "register_framework", ObjectKind.Role, "subscribe a framework in the role"),
        (AclAction.RunTask, "run_task", ObjectKind.User, "launch tasks that run as the OS user"),
        (AclAction.TeardownFramework, "teardown_framework", ObjectKind.Principal, "tear down frameworks registered by the principal"),
        (AclAction.KillTask, "kill_task", ObjectKind.Principal, "kill tasks of frameworks registered by the principal"),
        (AclAction.ViewFramework, "view_frameworks", ObjectKind.Principal, "see frameworks registered by the principal"),
        (AclAction.ViewTask, "view_tasks", ObjectKind.Principal, "see tasks of frameworks registered by the principal"),
        (AclAction.ViewTaskEnv, "view_task_env", ObjectKind.Principal, "see the environment values of those tasks"),
        (AclAction.AccessSandbox, "access_sandboxes", ObjectKind.Principal, "read sandboxes of tasks of frameworks registered by the principal"),
        (AclAction.ViewAgent, "view_agents", ObjectKind.Agent, "see agents"),
        (AclAction.ViewRole, "view_roles", ObjectKind.Role, "see the role's shares, quota and weight"),
        (AclAction.UpdateQuota, "update_quota", ObjectKind.Role, "set the role's quota"),
        (AclAction.UpdateWeights, "update_weights", ObjectKind.Role, "set the role's weight"),
        (AclAction.Reserve, "reserve_resources", ObjectKind.Role, "reserve resources for the role"),
        (AclAction.Unreserve, "unreserve_resources", ObjectKind.Principal, "unreserve resources reserved by the principal"),
        (AclAction.DrainAgent, "drain_agents", ObjectKind.Agent, "drain and reactivate agents"),
        (AclAction.MarkAgentGone, "mark_agents_gone", ObjectKind.Agent, "mark agents gone for good (irreversible)"),
        (AclAction.RegisterAgent, "register_agents", ObjectKind.Agent, "register (and re-register) agents"),
        (AclAction.CreateToken, "create_tokens", ObjectKind.Principal, "issue tokens for the principal"),
        (AclAction.ManageSecrets, "manage_secrets", ObjectKind.Role, "set, list and remove the role's secrets"),
        (AclAction.ManageJobs, "manage_jobs", ObjectKind.Role, "submit, see, scale, restart and stop the role's jobs through the Jobs API"),
    ];

    private static readonly Dictionary<string, AclAction> ByName = Table.ToDictionary(t => t.Name, t => t.Action, StringComparer.Ordinal);

    public static IEnumerable<AclAction> All => Table.Select(t => t.Action);

    public static IEnumerable<string> Names => Table.Select(t => t.Name);

    public static string Name(this AclAction action) => Row(action).Name;

    public static ObjectKind KindOf(this AclAction action) => Row(action).Kind;

    public static string Meaning(this AclAction action) => Row(action).Meaning;

    public static bool TryParse(string name, out AclAction action) => ByName.TryGetValue(name, out action);

    /// <summary>How a message names an object of this action (<c>role 'eng'</c>, <c>user 'root'</c>).</summary>
    public static string DescribeObject(this AclAction action, string value) => action.KindOf() switch
    {
        ObjectKind.Role => $"role '{value}'",
        ObjectKind.User => value.Length == 0 ? "the agent's own user (no user given; root on most hosts)" : $"user '{value}'",
        ObjectKind.Agent => value == "*" ? "all agents" : $"agent '{value}'",
        _ => value.Length == 0 ? "objects of anonymous principals" : $"objects of principal '{value}'",
    };

    private static (AclAction Action, string Name, ObjectKind Kind, string Meaning) Row(AclAction action)
        => Table.First(t => t.Action == action);
}
