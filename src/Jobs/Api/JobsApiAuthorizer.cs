using System.Collections.Concurrent;
using Grpc.Core;
using Sched.V1;
using Scheduler.Channels;
using Scheduler.FrameworkSdk;
using Scheduler.Protocol;

namespace Scheduler.Jobs.Api;

/// <summary>A Jobs API caller the masters authenticated.</summary>
/// <param name="Principal">Empty on an open API (masters that allow anonymous callers).</param>
/// <param name="Token">The bearer token it showed (null on an open API).</param>
/// <param name="Unrestricted">A superuser, the jobs framework's own principal, or any caller of an open API: every role's jobs.</param>
public sealed record JobsApiCaller(string Principal, string? Token, bool Unrestricted)
{
    internal static readonly JobsApiCaller Open = new("", null, Unrestricted: true);
}

/// <summary>
/// Who may call the Jobs API when the jobs framework runs on a secure cluster (it presents a token
/// to the masters): callers show a bearer token (<c>authorization: Bearer TOKEN</c>), which the
/// masters verify (<c>Operator.WhoAmI</c> with the caller's token). Superusers and the jobs
/// framework's own principal manage every job; any other principal manages the jobs of the roles
/// the masters' ACLs allow it <c>manage_jobs</c> on (asked of the masters, <c>WhoAmI</c> checks),
/// since every job runs as the framework's principal and a rule per role is what lends those
/// rights. Without a token of its own (masters that allow anonymous callers) the API is open, as
/// the masters are. Verified tokens and their answers are remembered for a minute.
/// </summary>
public sealed class JobsApiAuthorizer
{
    private static readonly TimeSpan Remember = TimeSpan.FromMinutes(1);
    private readonly IReadOnlyList<string> _masters;
    private readonly string? _ownToken;
    private readonly TimeProvider _time;
    private readonly Scheduler.Channels.Tls.ClientTls? _tls;
    private readonly ConcurrentDictionary<string, (WhoAmIResponse Who, DateTimeOffset Until)> _verified = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Token, string Role), (bool Allowed, DateTimeOffset Until)> _roles = new();
    private string? _ownPrincipal;

    /// <param name="tls">How to reach the masters over TLS (null: plain).</param>
    public JobsApiAuthorizer(IReadOnlyList<string> masters, string? ownToken, TimeProvider time, Scheduler.Channels.Tls.ClientTls? tls = null)
    {
        _tls = tls;
        _masters = masters;
        _ownToken = string.IsNullOrWhiteSpace(ownToken) ? null : ownToken.Trim();
        _time = time;
    }

    /// <summary>Whether callers must show a token.</summary>
    public bool Required => _ownToken is not null;

    /// <summary>The caller, or UNAUTHENTICATED (saying what to do) when it shows no token the masters accept.</summary>
    public async Task<JobsApiCaller> AuthenticateAsync(ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (_ownToken is null)
        {
            return JobsApiCaller.Open;
        }
        var header = context.RequestHeaders.GetValue("authorization");
        if (header is null || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || header.Length <= 7)
        {
            throw new RpcException(new Status(StatusCode.Unauthenticated,
                "the Jobs API needs a bearer token (authorization: Bearer TOKEN); give schedctl --token-file FILE or SCHED_TOKEN"));
        }
        var token = header[7..].Trim();
        var caller = (await VerifyAsync(token, [], context.CancellationToken)).Who;
        _ownPrincipal ??= (await VerifyAsync(_ownToken, [], context.CancellationToken)).Who.Principal;
        return new JobsApiCaller(caller.Principal, token, caller.Superuser || caller.Principal == _ownPrincipal);
    }

    /// <summary>The roles among <paramref name="roles"/> whose jobs the caller may manage.</summary>
    public async Task<IReadOnlySet<string>> ManageableAsync(JobsApiCaller caller, IEnumerable<string> roles, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(caller);
        var wanted = roles.ToHashSet(StringComparer.Ordinal);
        if (caller.Unrestricted)
        {
            return wanted;
        }
        var token = caller.Token ?? throw new ArgumentException("a restricted caller has a token", nameof(caller));
        var now = _time.GetUtcNow();
        if (_roles.Count > 4096)
        {
            foreach (var stale in _roles.Where(e => e.Value.Until <= now).Select(e => e.Key).ToList())
            {
                _roles.TryRemove(stale, out _);
            }
        }
        var allowed = new HashSet<string>(StringComparer.Ordinal);
        var ask = new List<string>();
        foreach (var role in wanted)
        {
            if (_roles.TryGetValue((token, role), out var known) && known.Until > now)
            {
                if (known.Allowed)
                {
                    allowed.Add(role);
                }
            }
            else
            {
                ask.Add(role);
            }
        }
        if (ask.Count > 0)
        {
            var (_, answers) = await VerifyAsync(token, ask, cancellationToken);
            for (var i = 0; i < ask.Count; i++)
            {
                _roles[(token, ask[i])] = (answers[i], now + Remember);
                if (answers[i])
                {
                    allowed.Add(ask[i]);
                }
            }
        }
        return allowed;
    }

    /// <summary>Throws PERMISSION_DENIED (naming the role and who may) unless the caller may manage jobs of every role given.</summary>
    public async Task DemandAsync(JobsApiCaller caller, IEnumerable<string> roles, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(caller);
        var wanted = roles.Distinct(StringComparer.Ordinal).ToList();
        var allowed = await ManageableAsync(caller, wanted, cancellationToken);
        if (wanted.FirstOrDefault(r => !allowed.Contains(r)) is { } denied)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied,
                $"principal '{caller.Principal}' may not manage jobs of role '{denied}': jobs run as the jobs framework's principal '{_ownPrincipal}', "
                + $"so only it, superusers, and principals the masters' ACLs allow manage_jobs on the role may; ask an operator for such a rule (docs/security.md) or use a token of one of them"));
        }
    }

    private async Task<(WhoAmIResponse Who, IReadOnlyList<bool> Allowed)> VerifyAsync(string token, IReadOnlyList<string> manageJobsRoles, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        if (manageJobsRoles.Count == 0 && _verified.TryGetValue(token, out var known) && known.Until > now)
        {
            return (known.Who, []);
        }
        using var masters = new MasterDirectory(_masters, new GrpcChannelSettings { Tls = _tls, BearerToken = token });
        var request = new WhoAmIRequest();
        request.Checks.Add(manageJobsRoles.Select(r => new AclCheck { Action = "manage_jobs", Object = r }));
        WhoAmIResponse who;
        try
        {
            who = await masters.CallAsync(OperatorMethods.WhoAmI, request, TimeSpan.FromSeconds(10), cancellationToken);
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unauthenticated or StatusCode.PermissionDenied)
        {
            throw new RpcException(new Status(StatusCode.Unauthenticated, $"the masters do not accept the token shown to the Jobs API ({e.Status.Detail}); get a valid one ('schedctl token create')"));
        }
        catch (RpcException e)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, $"cannot verify the caller's token with the masters ({e.Status.Detail}); try again"));
        }
        if (who.Principal.Length == 0)
        {
            throw new RpcException(new Status(StatusCode.Unauthenticated, "the masters do not accept the token shown to the Jobs API (it names no principal); get a valid one ('schedctl token create')"));
        }
        if (who.Allowed.Count != manageJobsRoles.Count)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, $"the masters answered {who.Allowed.Count} of {manageJobsRoles.Count} role checks (a master older than the Jobs API?); upgrade the masters and try again"));
        }
        _verified[token] = (who, now + Remember);
        return (who, [.. who.Allowed]);
    }
}
