using System.Collections.Concurrent;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Scheduler.Hosting;

/// <summary>Options of the <see cref="BearerTokenHandler"/> scheme.</summary>
public sealed class BearerTokenOptions : AuthenticationSchemeOptions
{
    public const string Scheme = "Bearer";

    /// <summary>What a token must satisfy (signature key, issuer, audience, expiry).</summary>
    public TokenValidationParameters? Tokens { get; set; }
}

/// <summary>
/// An ASP.NET Core authentication scheme for the bearer tokens of a cluster (JWTs checked by
/// <see cref="JsonWebTokenHandler"/>). It does what the JWT bearer handler does for us, without
/// its per-request work: a token found valid is remembered, with its authentication result, until
/// it expires, so a client presenting the same token on every call (all our clients do) costs one
/// signature check and then a dictionary lookup per call. Failures are not remembered; their reason
/// is left for <see cref="AuthenticationInterceptor"/> to report.
/// </summary>
public sealed class BearerTokenHandler(IOptionsMonitor<BearerTokenOptions> options, ILoggerFactory logger, UrlEncoder encoder, BearerTokenCache cache)
    : AuthenticationHandler<BearerTokenOptions>(options, logger, encoder)
{
    private const string Prefix = "Bearer ";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        if (string.IsNullOrEmpty(header) || !header.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase))
        {
            return AuthenticateResult.NoResult();
        }
        if (cache.TryGet(header, out var known))
        {
            return known;
        }
        var token = header[Prefix.Length..].Trim();
        var parameters = Options.Tokens ?? throw new InvalidOperationException("BearerTokenOptions.Tokens is not set");
        var validation = await cache.Handler.ValidateTokenAsync(token, parameters).ConfigureAwait(false);
        if (!validation.IsValid)
        {
            var failure = validation.Exception ?? new SecurityTokenValidationException("invalid token");
            Context.Items[AuthenticationInterceptor.TokenFailureKey] = GrpcServer.TokenFailure(failure);
            return AuthenticateResult.Fail(failure);
        }
        var result = AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(validation.ClaimsIdentity), Scheme.Name));
        cache.Add(header, result, validation.SecurityToken.ValidTo);
        return result;
    }
}

/// <summary>The results of <see cref="BearerTokenHandler"/> for valid tokens, until each expires.
/// Bounded: emptied when it reaches <see cref="MaxEntries"/> tokens.</summary>
public sealed class BearerTokenCache(TimeProvider? time = null)
{
    public const int MaxEntries = 10_000;
    private readonly ConcurrentDictionary<string, (AuthenticateResult Result, DateTime Expires)> _valid = new(StringComparer.Ordinal);
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public JsonWebTokenHandler Handler { get; } = new() { MapInboundClaims = false };

    public bool TryGet(string header, out AuthenticateResult result)
    {
        if (_valid.TryGetValue(header, out var cached))
        {
            if (cached.Expires > _time.GetUtcNow().UtcDateTime)
            {
                result = cached.Result;
                return true;
            }
            _valid.TryRemove(header, out _);
        }
        result = null!;
        return false;
    }

    public void Add(string header, AuthenticateResult result, DateTime expires)
    {
        if (expires <= _time.GetUtcNow().UtcDateTime)
        {
            return;
        }
        if (_valid.Count >= MaxEntries)
        {
            _valid.Clear();
        }
        _valid[header] = (result, expires);
    }
}
