using Google.Protobuf.Reflection;

namespace Scheduler.Master.Security;

/// <summary>How a master method is guarded.</summary>
public enum Access
{
    /// <summary>Answered without credentials (health, leader, who-am-I).</summary>
    Public,

    /// <summary>Needs credentials; reads (answers filtered by what the caller may see).</summary>
    Read,

    /// <summary>Needs credentials; changes state: checked against the ACLs and audited.</summary>
    Mutate,
}

/// <summary>
/// Every method the master serves, classified. A method missing here is refused (treated as
/// <see cref="Access.Mutate"/> with no ACL) and fails the test that walks the proto descriptors,
/// so a new RPC cannot be added without deciding how it is guarded.
/// </summary>
public static class MethodAccess
{
    private static readonly Dictionary<string, Access> Table = Build();

    /// <summary>The services the master serves, by descriptor.</summary>
    public static IReadOnlyList<ServiceDescriptor> Services { get; } =
    [
        Sched.V1.Scheduler.Descriptor,
        Sched.V1.Operator.Descriptor,
        Sched.V1.AgentLink.Descriptor,
    ];

    public static IReadOnlyDictionary<string, Access> All => Table;

    /// <summary>The access class of <c>/package.Service/Method</c>; null when not classified.</summary>
    public static Access? Of(string method)
    {
        ArgumentNullException.ThrowIfNull(method);
        if (Table.TryGetValue(method, out var access))
        {
            return access;
        }
        // Health checks and reflection are answered to anyone.
        return method.StartsWith("/grpc.health.v1.Health/", StringComparison.Ordinal)
            || method.StartsWith("/grpc.reflection.", StringComparison.Ordinal)
            ? Access.Public
            : null;
    }

    public static bool IsPublic(string method) => Of(method) == Access.Public;

    public static bool IsMutating(string method) => Of(method) is null or Access.Mutate;

    private static Dictionary<string, Access> Build()
    {
        var scheduler = "/" + Sched.V1.Scheduler.Descriptor.FullName + "/";
        var op = "/" + Sched.V1.Operator.Descriptor.FullName + "/";
        var link = "/" + Sched.V1.AgentLink.Descriptor.FullName + "/";
        return new Dictionary<string, Access>(StringComparer.Ordinal)
        {
            [scheduler + "Subscribe"] = Access.Mutate,
            [scheduler + "Accept"] = Access.Mutate,
            [scheduler + "Decline"] = Access.Mutate,
            [scheduler + "Revive"] = Access.Mutate,
            [scheduler + "Suppress"] = Access.Mutate,
            [scheduler + "Kill"] = Access.Mutate,
            [scheduler + "Acknowledge"] = Access.Mutate,
            [scheduler + "Reconcile"] = Access.Read,
            [scheduler + "Message"] = Access.Mutate,
            [scheduler + "Teardown"] = Access.Mutate,
            [scheduler + "UpdateFramework"] = Access.Mutate,
            [op + "GetHealth"] = Access.Public,
            [op + "GetLeader"] = Access.Public,
            [op + "WhoAmI"] = Access.Public,
            [op + "GetState"] = Access.Read,
            [op + "GetAgents"] = Access.Read,
            [op + "GetFrameworks"] = Access.Read,
            [op + "GetTasks"] = Access.Read,
            [op + "GetRoles"] = Access.Read,
            [op + "GetQuota"] = Access.Read,
            [op + "Subscribe"] = Access.Read,
            [op + "UpdateQuota"] = Access.Mutate,
            [op + "UpdateWeights"] = Access.Mutate,
            [op + "DrainAgent"] = Access.Mutate,
            [op + "ReactivateAgent"] = Access.Mutate,
            [op + "MarkAgentGone"] = Access.Mutate,
            [op + "KillTask"] = Access.Mutate,
            [op + "ReserveResources"] = Access.Mutate,
            [op + "UnreserveResources"] = Access.Mutate,
            [op + "CreateToken"] = Access.Mutate,
            [op + "TeardownFramework"] = Access.Mutate,
            [op + "SetSecret"] = Access.Mutate,
            [op + "ListSecrets"] = Access.Read,
            [op + "DeleteSecret"] = Access.Mutate,
            [link + "Connect"] = Access.Mutate,
        };
    }
}
