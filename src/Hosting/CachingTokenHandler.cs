using System.Collections.Concurrent;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Scheduler.Hosting;

/// <summary>
/// Validates bearer tokens with <see cref="JsonWebTokenHandler"/> and remembers the tokens it
/// found valid until they expire, so a client presenting the same token on every call (all our
/// clients do) costs one signature check, not one per call. Failures are not remembered. Bounded:
/// the cache is emptied when it reaches <see cref="MaxEntries"/> tokens.
/// </summary>
public sealed class CachingTokenHandler : TokenHandler
{
    public const int MaxEntries = 10_000;
    private readonly JsonWebTokenHandler _inner = new() { MapInboundClaims = false };
    private readonly ConcurrentDictionary<string, (TokenValidationResult Result, DateTime Expires)> _valid = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;

    public CachingTokenHandler(TimeProvider? time = null) => _time = time ?? TimeProvider.System;

    public override async Task<TokenValidationResult> ValidateTokenAsync(string token, TokenValidationParameters validationParameters)
    {
        ArgumentNullException.ThrowIfNull(token);
        var now = _time.GetUtcNow().UtcDateTime;
        if (_valid.TryGetValue(token, out var cached))
        {
            if (cached.Expires > now)
            {
                return cached.Result;
            }
            _valid.TryRemove(token, out _);
        }
        var result = await _inner.ValidateTokenAsync(token, validationParameters).ConfigureAwait(false);
        if (result.IsValid && result.SecurityToken is { } security && security.ValidTo > now)
        {
            if (_valid.Count >= MaxEntries)
            {
                _valid.Clear();
            }
            _valid[token] = (result, security.ValidTo);
        }
        return result;
    }

    public override SecurityToken ReadToken(string token) => _inner.ReadToken(token);
}
