using Grpc.Core;
using Microsoft.Extensions.Logging;
using Scheduler.Hosting;
using Scheduler.Master.Telemetry;
using Scheduler.Master.Loop;
using Scheduler.Security;

namespace Scheduler.Master.Security;

/// <summary>
/// The master's authentication and authorization: the token key, the ACLs in force, and the
/// checks handlers and the loop make. <see cref="Open"/> is a master that allows anonymous
/// callers: everything is allowed and nothing is owned.
/// </summary>
public sealed class MasterSecurity
{
    private MasterSecurity(TokenKeys? keys, Authorizer authorizer, bool allowAnonymous, TimeSpan maxTokenTtl)
    {
        Keys = keys;
        Authorizer = authorizer;
        AllowAnonymous = allowAnonymous;
        MaxTokenTtl = maxTokenTtl;
    }

    /// <summary>Anyone may do anything (<c>--insecure-allow-anonymous</c> without a token key).</summary>
    public static MasterSecurity Open { get; } = new(null, Authorizer.Fixed(AclPolicy.AllowAll), allowAnonymous: true, TimeSpan.Zero);

    /// <summary>Encrypts role secrets; null when the master holds no secrets key.</summary>
    public SecretBox? Secrets { get; private init; }

    /// <summary>Signs and checks tokens; null when tokens are not accepted.</summary>
    public TokenKeys? Keys { get; }

    public Authorizer Authorizer { get; }

    public bool AllowAnonymous { get; }

    public TimeSpan MaxTokenTtl { get; }

    /// <summary>Whether ACLs and ownership are enforced (false on an anonymous master).</summary>
    public bool Enforced => !AllowAnonymous;

    /// <summary>From the master's options: the token key (created when missing) and the ACL file.
    /// Throws with what to fix when either cannot be read.</summary>
    public static MasterSecurity Create(MasterOptions options, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        var secrets = SecretBox.LoadOrCreate(options.SecretsKeyFile ?? Path.Combine(options.WorkDir, "secrets.key"));
        if (options.AllowAnonymous && options.TokenKeyFile is null)
        {
            return new MasterSecurity(null, Open.Authorizer, allowAnonymous: true, TimeSpan.Zero) { Secrets = secrets };
        }
        var keyPath = options.TokenKeyFile ?? Path.Combine(options.WorkDir, "token-key.pem");
        var keys = TokenKeys.LoadOrCreate(keyPath);
        Authorizer authorizer;
        if (options.AllowAnonymous)
        {
            authorizer = Authorizer.Fixed(AclPolicy.AllowAll);
        }
        else if (options.AclsFile is { Length: > 0 } acls)
        {
            try
            {
                authorizer = Authorizer.FromFile(acls);
            }
            catch (AclFileException e)
            {
                throw new InvalidOperationException($"the ACL file is not valid:{Environment.NewLine}{e.Message}", e);
            }
            authorizer.ReloadFailed += m => MasterLog.AclReloadFailed(logger, m);
            authorizer.Reloaded += p => MasterLog.AclReloaded(logger, p);
        }
        else
        {
            authorizer = Authorizer.Fixed(AclPolicy.Default);
        }
        return new MasterSecurity(keys, authorizer, options.AllowAnonymous, options.MaxTokenTtl) { Secrets = secrets };
    }

    /// <summary>What the gRPC server is told: tokens signed by <see cref="Keys"/>, client
    /// certificates, and the public methods.</summary>
    public ServerAuthentication ServerAuthentication() => new()
    {
        Tokens = Keys?.ValidationParameters(),
        TrustClientCertificates = true,
        AllowAnonymous = AllowAnonymous,
        IsPublicMethod = MethodAccess.IsPublic,
        Hint = "present a token as 'authorization: Bearer TOKEN' metadata (schedctl: --token-file or SCHED_TOKEN; an operator issues one with 'schedctl token create')",
    };

    public static Caller CallerOf(ServerCallContext context) => AuthenticationInterceptor.CallerOf(context);

    public bool IsSuperuser(Caller caller) => !Enforced || Authorizer.IsSuperuser(caller);

    public bool Allows(Caller caller, AclAction action, string target) => !Enforced || Authorizer.Allows(caller, action, target);

    /// <summary>Whether <paramref name="caller"/> may do <paramref name="action"/> on an object
    /// owned by <paramref name="owner"/>: owners may always act on what they own.</summary>
    public bool AllowsOnOwned(Caller caller, AclAction action, string owner)
    {
        ArgumentNullException.ThrowIfNull(caller);
        return !Enforced || (!caller.IsAnonymous && caller.Principal == owner) || Authorizer.Allows(caller, action, owner);
    }

    /// <summary>Throws PERMISSION_DENIED naming principal, action and object unless allowed.</summary>
    public void Demand(Caller caller, AclAction action, string target)
    {
        if (!Allows(caller, action, target))
        {
            throw Denied(caller, action, target);
        }
    }

    /// <summary>As <see cref="Demand"/>, for an object owned by <paramref name="owner"/>.</summary>
    public void DemandOnOwned(Caller caller, AclAction action, string owner, string objectText)
    {
        if (!AllowsOnOwned(caller, action, owner))
        {
            throw MasterErrors.PermissionDenied($"principal '{caller.Display}' may not {action.Name()} on {objectText} (registered by principal '{owner}'): no rule of {Authorizer.Source} allows it");
        }
    }

    public RpcException Denied(Caller caller, AclAction action, string target)
        => MasterErrors.PermissionDenied(Authorizer.Denied(caller, action, target));
}
