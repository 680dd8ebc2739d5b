using System.Collections.Concurrent;
using System.Security.Claims;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Scheduler.Security;

namespace Scheduler.Hosting;

/// <summary>A bearer token found valid: the principal it names and the <see cref="Caller"/> of
/// calls that present it (null when it names no principal: such calls are refused). Immutable,
/// shared by every call that presents the token.</summary>
public sealed class ValidToken
{
    internal ValidToken(ClaimsIdentity identity, DateTime expires)
    {
        Principal = new ClaimsPrincipal(identity);
        Expires = expires;
        var name = identity.Name;
        Caller = string.IsNullOrEmpty(name) ? null : new Caller(name, CallerKind.Token);
    }

    public ClaimsPrincipal Principal { get; }

    public Caller? Caller { get; }

    /// <summary>When the token expires (UTC); it is not served from the cache at or after it.</summary>
    public DateTime Expires { get; }
}

/// <summary>
/// Checks the bearer tokens of a cluster (JWTs, by <see cref="JsonWebTokenHandler"/> against the
/// given <see cref="TokenValidationParameters"/>: signature key, issuer, audience, expiry) and
/// remembers each one found valid until it expires, so that a client presenting the same token on
/// every call (all our clients do) costs one signature check and then a dictionary lookup per call.
/// Keyed by the whole <c>authorization</c> value. Failures are not remembered. Bounded: emptied
/// when it holds <see cref="MaxEntries"/> tokens.
/// </summary>
public sealed class BearerTokens(TokenValidationParameters parameters, TimeProvider? time = null)
{
    public const int MaxEntries = 10_000;

    /// <summary>What an <c>authorization</c> value holding a bearer token starts with (any case).</summary>
    public const string Prefix = "Bearer ";

    private readonly TokenValidationParameters _parameters = parameters ?? throw new ArgumentNullException(nameof(parameters));
    private readonly ConcurrentDictionary<string, ValidToken> _valid = new(StringComparer.Ordinal);
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false };

    /// <summary>Whether <paramref name="authorization"/> presents a bearer token at all.</summary>
    public static bool IsBearer(string? authorization)
        => !string.IsNullOrEmpty(authorization) && authorization.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase);

    /// <summary>The token of <paramref name="authorization"/> if it was found valid before and has
    /// not expired since; an expired one is forgotten.</summary>
    public bool TryGetValid(string authorization, out ValidToken token)
    {
        if (_valid.TryGetValue(authorization, out var cached))
        {
            if (cached.Expires > _time.GetUtcNow().UtcDateTime)
            {
                token = cached;
                return true;
            }
            _valid.TryRemove(new KeyValuePair<string, ValidToken>(authorization, cached));
        }
        token = null!;
        return false;
    }

    /// <summary>Checks the token of <paramref name="authorization"/> (<c>Bearer TOKEN</c>): the
    /// valid token, remembered until it expires, or why it was refused, in a caller's words.</summary>
    public async Task<(ValidToken? Token, string? Refusal)> ValidateAsync(string authorization)
    {
        ArgumentNullException.ThrowIfNull(authorization);
        if (TryGetValid(authorization, out var known))
        {
            return (known, null);
        }
        if (!IsBearer(authorization))
        {
            return (null, "the 'authorization' metadata is not 'Bearer TOKEN'");
        }
        var validation = await _handler.ValidateTokenAsync(authorization[Prefix.Length..].Trim(), _parameters).ConfigureAwait(false);
        if (!validation.IsValid)
        {
            return (null, Refusal(validation.Exception ?? new SecurityTokenValidationException("invalid token")));
        }
        var expires = validation.SecurityToken.ValidTo;
        var token = new ValidToken(validation.ClaimsIdentity, expires);
        if (expires > _time.GetUtcNow().UtcDateTime)
        {
            if (_valid.Count >= MaxEntries)
            {
                _valid.Clear();
            }
            _valid[authorization] = token;
        }
        return (token, null);
    }

    /// <summary>Why a token was refused, in a caller's words.</summary>
    internal static string Refusal(Exception e) => e switch
    {
        SecurityTokenExpiredException expired => $"it expired at {expired.Expires:yyyy-MM-dd'T'HH:mm:ss'Z'}; ask an operator for a new one ('schedctl token create')",
        SecurityTokenNotYetValidException => "it is not valid yet (check the clocks)",
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => "it was not signed by this cluster's token key",
        SecurityTokenInvalidIssuerException or SecurityTokenInvalidAudienceException => "it was not issued for this cluster",
        SecurityTokenMalformedException or ArgumentException => "it is not a well-formed token",
        _ => "it is not valid (" + e.GetType().Name + ")",
    };
}
