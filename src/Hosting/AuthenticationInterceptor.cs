using Grpc.Core;
using Microsoft.AspNetCore.Http;
using Scheduler.Security;

namespace Scheduler.Hosting;

/// <summary>
/// Turns what ASP.NET Core's authentication found for a call into its <see cref="Caller"/>
/// (<see cref="CallerOf"/>), and refuses calls that presented nothing valid with
/// UNAUTHENTICATED: why (no credentials, expired, bad signature) and what to present.
/// </summary>
public sealed class AuthenticationInterceptor(ServerAuthentication options) : ServerCallInterceptor
{
    private const string CallerKey = "sched-caller";

    /// <summary>Set on the HTTP context by the bearer handler when a token was refused.</summary>
    internal const string TokenFailureKey = "sched-token-failure";

    /// <summary>The caller of a call that passed this interceptor; anonymous when it never ran.</summary>
    public static Caller CallerOf(ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.UserState.TryGetValue(CallerKey, out var c) && c is Caller caller ? caller : Caller.Anonymous;
    }

    protected override Task<T> AroundAsync<T>(ServerCallContext context, Func<Task<T>> call)
    {
        var (caller, problem) = Authenticate(context);
        if (caller is null && !options.IsPublicMethod(context.Method))
        {
            throw new RpcException(new Status(StatusCode.Unauthenticated, $"{problem}; {options.Hint}"));
        }
        context.UserState[CallerKey] = caller ?? Caller.Anonymous;
        return call();
    }

    private (Caller? Caller, string Problem) Authenticate(ServerCallContext context)
    {
        var http = context.GetHttpContext();
        if (http.Items.TryGetValue(TokenFailureKey, out var failure) && failure is string reason)
        {
            return (null, $"the bearer token was refused: {reason}");
        }
        var user = http.User;
        if (user.Identity is { IsAuthenticated: true } identity && options.Tokens is not null)
        {
            var principal = identity.Name;
            if (string.IsNullOrEmpty(principal))
            {
                return (null, "the bearer token names no principal (no 'sub' claim)");
            }
            return (new Caller(principal, CallerKind.Token), "");
        }
        if (options.TrustClientCertificates && http.Connection.ClientCertificate is { } certificate)
        {
            var name = certificate.GetNameInfo(System.Security.Cryptography.X509Certificates.X509NameType.SimpleName, forIssuer: false);
            if (!string.IsNullOrEmpty(name))
            {
                return (new Caller(name, CallerKind.Certificate), "");
            }
        }
        if (options.AllowAnonymous)
        {
            return (Caller.Anonymous, "");
        }
        var header = http.Request.Headers.Authorization.ToString();
        return (null, header.Length == 0
            ? $"{context.Method} needs credentials and the call presented none"
            : "the 'authorization' metadata is not 'Bearer TOKEN'");
    }
}
