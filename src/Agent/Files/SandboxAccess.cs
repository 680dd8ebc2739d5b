using Grpc.Core;
using Scheduler.Security;

namespace Scheduler.Agent.Files;

/// <summary>
/// Who may read which sandboxes of the file service: paths are <c>FRAMEWORK/TASK/…</c>, and a
/// caller may read those of a framework when it is the principal that registered the framework,
/// a superuser, or allowed <c>access_sandboxes</c> on that principal by the ACLs (the masters'
/// file and vocabulary). A listing of the root shows only the frameworks the caller may read.
/// </summary>
public sealed class SandboxAccess(Authorizer authorizer, SandboxOwners owners)
{
    public Authorizer Authorizer { get; } = authorizer;

    /// <summary>Whether <paramref name="caller"/> may read the sandboxes of <paramref name="frameworkId"/>.</summary>
    public bool MayRead(Caller caller, string frameworkId)
    {
        ArgumentNullException.ThrowIfNull(caller);
        if (caller.IsAnonymous)
        {
            return false;
        }
        if (Authorizer.IsSuperuser(caller))
        {
            return true;
        }
        var owner = owners.OwnerOf(frameworkId);
        return owner is not null && (owner == caller.Principal || Authorizer.Allows(caller, AclAction.AccessSandbox, owner));
    }

    /// <summary>Throws PERMISSION_DENIED naming principal, action and object unless
    /// <paramref name="caller"/> may read <paramref name="path"/>; the root needs no right (its
    /// listing is filtered).</summary>
    public void Demand(Caller caller, string path)
    {
        ArgumentNullException.ThrowIfNull(caller);
        var framework = FrameworkOf(path);
        if (framework is null || MayRead(caller, framework))
        {
            return;
        }
        var owner = owners.OwnerOf(framework);
        throw new RpcException(new Status(StatusCode.PermissionDenied, owner is null
            ? $"principal '{caller.Display}' may not access_sandboxes of framework {framework}: its owner is not known to this agent, so only superusers may"
            : $"principal '{caller.Display}' may not access_sandboxes of framework {framework} (registered by principal '{owner}'): no rule of {Authorizer.Source} allows it"));
    }

    /// <summary>The framework a sandbox path is under; null for the root.</summary>
    public static string? FrameworkOf(string path)
    {
        var trimmed = (path ?? "").TrimStart('/');
        if (trimmed.Length == 0 || trimmed == ".")
        {
            return null;
        }
        var slash = trimmed.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? trimmed : trimmed[..slash];
    }
}
