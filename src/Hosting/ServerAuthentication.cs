using Microsoft.IdentityModel.Tokens;

namespace Scheduler.Hosting;

/// <summary>
/// How a <see cref="GrpcServer"/> authenticates callers (<see cref="AuthenticationInterceptor"/>):
/// bearer tokens (the <c>authorization: Bearer …</c> metadata) checked by <see cref="BearerTokens"/>,
/// and client certificates the TLS layer validated. Every call except the public ones must present one; the others answer
/// UNAUTHENTICATED saying what to present.
/// </summary>
public sealed class ServerAuthentication
{
    /// <summary>How tokens are checked (signature key, issuer, audience, expiry); null: tokens are not accepted.</summary>
    public TokenValidationParameters? Tokens { get; init; }

    /// <summary>Accept a client certificate the TLS layer validated as the caller's identity.</summary>
    public bool TrustClientCertificates { get; init; }

    /// <summary>Let calls without credentials through as <see cref="Security.Caller.Anonymous"/>
    /// (credentials presented are still checked).</summary>
    public bool AllowAnonymous { get; init; }

    /// <summary>Methods (<c>/package.Service/Method</c>) answered without credentials.</summary>
    public Func<string, bool> IsPublicMethod { get; init; } = _ => false;

    /// <summary>What an UNAUTHENTICATED answer tells the caller to present.</summary>
    public string Hint { get; init; } = "present a token as 'authorization: Bearer TOKEN' metadata";
}
