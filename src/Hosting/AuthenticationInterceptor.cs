using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
using Scheduler.Security;

namespace Scheduler.Hosting;

/// <summary>
/// Authenticates every call and turns what it presented into its <see cref="Caller"/>
/// (<see cref="CallerOf"/>): a bearer token checked by <see cref="BearerTokens"/> (which remembers
/// valid tokens until they expire), else a client certificate the TLS layer validated. Calls
/// that presented nothing valid are refused with UNAUTHENTICATED: why (no credentials, expired,
/// bad signature) and what to present. The principal of a valid token is also the HTTP
/// context's <c>User</c>.
/// </summary>
/// <remarks>
/// This is the whole of the server's authentication: no ASP.NET Core authentication middleware
/// runs. Its per-request work (an authentication service, a handler provider and a handler
/// created per request, a new ticket and principal) cost more server CPU than the whole of a small
/// call once the token itself was remembered; here a known token costs a dictionary lookup.
/// </remarks>
public sealed class AuthenticationInterceptor(ServerAuthentication options) : ServerCallInterceptor
{
    private const string CallerKey = "sched-caller";
    private const string NoPrincipal = "the bearer token names no principal (no 'sub' claim)";

    private readonly BearerTokens? _tokens = options.Tokens is null ? null : new BearerTokens(options.Tokens);

    /// <summary>The caller of each client certificate seen (one instance per TLS connection).</summary>
    private static readonly ConditionalWeakTable<X509Certificate2, Caller> CertificateCallers = [];

    /// <summary>The caller of a call that passed this interceptor; anonymous when it never ran.</summary>
    public static Caller CallerOf(ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.UserState.TryGetValue(CallerKey, out var c) && c is Caller caller ? caller : Caller.Anonymous;
    }

    protected override Task<T> AroundAsync<T>(ServerCallContext context, Func<Task<T>> call)
    {
        var http = context.GetHttpContext();
        if (_tokens is not null)
        {
            string? authorization = http.Request.Headers.Authorization;
            if (BearerTokens.IsBearer(authorization))
            {
                if (_tokens.TryGetValid(authorization!, out var known))
                {
                    http.User = known.Principal;
                    return Admit(context, known.Caller, NoPrincipal, call);
                }
                return ValidateThenRunAsync(context, http, authorization!, call);
            }
        }
        var (caller, problem) = Authenticate(context, http);
        return Admit(context, caller, problem, call);
    }

    /// <summary>A token not known valid: checked (and remembered when valid) before the call runs.</summary>
    private async Task<T> ValidateThenRunAsync<T>(ServerCallContext context, HttpContext http, string authorization, Func<Task<T>> call)
    {
        var (token, refusal) = await _tokens!.ValidateAsync(authorization).ConfigureAwait(false);
        if (token is null)
        {
            return await Admit(context, null, $"the bearer token was refused: {refusal}", call).ConfigureAwait(false);
        }
        http.User = token.Principal;
        return await Admit(context, token.Caller, NoPrincipal, call).ConfigureAwait(false);
    }

    private Task<T> Admit<T>(ServerCallContext context, Caller? caller, string problem, Func<Task<T>> call)
    {
        if (caller is null && !options.IsPublicMethod(context.Method))
        {
            throw new RpcException(new Status(StatusCode.Unauthenticated, $"{problem}; {options.Hint}"));
        }
        context.UserState[CallerKey] = caller ?? Caller.Anonymous;
        return call();
    }

    /// <summary>A call without a bearer token: its client certificate, else anonymous when allowed.</summary>
    private (Caller? Caller, string Problem) Authenticate(ServerCallContext context, HttpContext http)
    {
        if (options.TrustClientCertificates && http.Connection.ClientCertificate is { } certificate)
        {
            if (CertificateCallers.TryGetValue(certificate, out var known))
            {
                return (known, "");
            }
            var name = certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
            if (!string.IsNullOrEmpty(name))
            {
                return (CertificateCallers.GetValue(certificate, _ => new Caller(name, CallerKind.Certificate)), "");
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
