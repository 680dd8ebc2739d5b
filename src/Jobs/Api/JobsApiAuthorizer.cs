using System.Collections.Concurrent;
using Grpc.Core;
using Sched.V1;
using Scheduler.Channels;
using Scheduler.FrameworkSdk;
using Scheduler.Protocol;

namespace Scheduler.Jobs.Api;

/// <summary>
/// Who may call the Jobs API when the jobs framework runs on a secure cluster (it presents a token
/// to the masters): callers show a bearer token (<c>authorization: Bearer TOKEN</c>), which the
/// masters verify (<c>Operator.WhoAmI</c> with the caller's token), and must be a superuser or the
/// jobs framework's own principal, since every job runs as that principal. Without a token of its
/// own (masters that allow anonymous callers) the API is open, as the masters are. Verified tokens
/// are remembered for a minute.
/// </summary>
public sealed class JobsApiAuthorizer
{
    private static readonly TimeSpan Remember = TimeSpan.FromMinutes(1);
    private readonly IReadOnlyList<string> _masters;
    private readonly string? _ownToken;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, (WhoAmIResponse Who, DateTimeOffset Until)> _verified = new(StringComparer.Ordinal);
    private string? _ownPrincipal;

    public JobsApiAuthorizer(IReadOnlyList<string> masters, string? ownToken, TimeProvider time)
    {
        _masters = masters;
        _ownToken = string.IsNullOrWhiteSpace(ownToken) ? null : ownToken.Trim();
        _time = time;
    }

    /// <summary>Whether callers must show a token.</summary>
    public bool Required => _ownToken is not null;

    /// <summary>Throws UNAUTHENTICATED or PERMISSION_DENIED (saying what to do) unless the caller may use the API.</summary>
    public async Task AuthorizeAsync(ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (_ownToken is null)
        {
            return;
        }
        var header = context.RequestHeaders.GetValue("authorization");
        if (header is null || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || header.Length <= 7)
        {
            throw new RpcException(new Status(StatusCode.Unauthenticated,
                "the Jobs API needs a bearer token (authorization: Bearer TOKEN); give schedctl --token-file FILE or SCHED_TOKEN"));
        }
        var caller = await VerifyAsync(header[7..].Trim(), context.CancellationToken);
        _ownPrincipal ??= (await VerifyAsync(_ownToken, context.CancellationToken)).Principal;
        if (!caller.Superuser && caller.Principal != _ownPrincipal)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied,
                $"principal '{caller.Principal}' may not manage jobs: jobs run as the jobs framework's principal '{_ownPrincipal}', so only it and superusers may use the Jobs API; use a token of one of them"));
        }
    }

    private async Task<WhoAmIResponse> VerifyAsync(string token, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        if (_verified.TryGetValue(token, out var known) && known.Until > now)
        {
            return known.Who;
        }
        using var masters = new MasterDirectory(_masters, new GrpcChannelSettings { BearerToken = token });
        WhoAmIResponse who;
        try
        {
            who = await masters.CallAsync(OperatorMethods.WhoAmI, new WhoAmIRequest(), TimeSpan.FromSeconds(10), cancellationToken);
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
        _verified[token] = (who, now + Remember);
        return who;
    }
}
