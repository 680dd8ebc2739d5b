using System.Security.Claims;
using System.Security.Cryptography;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Scheduler.Security;

/// <summary>
/// The key that signs and checks bearer tokens: an ECDSA P-256 key in a PEM file, shared by the
/// masters of one cluster. Tokens are JWTs (ES256) with the principal as <c>sub</c>, issuer and
/// audience <c>sched</c>, and an expiry.
/// </summary>
public sealed class TokenKeys : IDisposable
{
    public const string Issuer = "sched";
    public const string Audience = "sched";

    private readonly ECDsa _key;

    private TokenKeys(ECDsa key, string? path)
    {
        _key = key;
        Path = path;
        SecurityKey = new ECDsaSecurityKey(key) { KeyId = KeyIdOf(key) };
    }

    /// <summary>The file the key was read from (null when made in memory).</summary>
    public string? Path { get; }

    public ECDsaSecurityKey SecurityKey { get; }

    /// <summary>A new key in memory.</summary>
    public static TokenKeys Create() => new(ECDsa.Create(ECCurve.NamedCurves.nistP256), null);

    /// <summary>Reads the key at <paramref name="path"/>, or creates it (mode 0600) when the file
    /// does not exist. Refuses a key file that others than its owner may read.</summary>
    public static TokenKeys LoadOrCreate(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
            if (dir is not null)
            {
                Directory.CreateDirectory(dir);
            }
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }
            using (var file = new FileStream(path, options))
            using (var writer = new StreamWriter(file))
            {
                writer.Write(key.ExportPkcs8PrivateKeyPem());
            }
            return new TokenKeys(key, path);
        }
        if (!OperatingSystem.IsWindows())
        {
            var mode = File.GetUnixFileMode(path);
            if ((mode & (UnixFileMode.GroupRead | UnixFileMode.OtherRead | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
            {
                throw new InvalidOperationException($"the token key {path} may be read by others than its owner (mode {Convert.ToString((int)mode, 8)}); run 'chmod 600 {path}'");
            }
        }
        var existing = ECDsa.Create();
        try
        {
            existing.ImportFromPem(File.ReadAllText(path));
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            existing.Dispose();
            throw new InvalidOperationException($"the token key {path} is not an EC private key in PEM ({e.Message}); remove it to have a new one made, or give the cluster's key");
        }
        return new TokenKeys(existing, path);
    }

    /// <summary>
    /// Reads a key that only checks tokens: the masters' public key (<c>PUBLIC KEY</c> PEM, as
    /// <see cref="PublicKeyPem"/> writes it or <c>openssl ec -pubout</c> makes it), for servers
    /// that accept the cluster's tokens but issue none (agents). A private key is accepted too,
    /// under the same file-mode rule as <see cref="LoadOrCreate"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">When the file is missing or holds no EC key.</exception>
    public static TokenKeys LoadVerifier(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"the token key {path} does not exist; give the masters' public token key (a dev cluster's is DIR/token-key.pub.pem)");
        }
        var text = File.ReadAllText(path);
        if (text.Contains("PRIVATE KEY", StringComparison.Ordinal))
        {
            return LoadOrCreate(path);
        }
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(text);
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            key.Dispose();
            throw new InvalidOperationException($"the token key {path} is not an EC public key in PEM ({e.Message}); give the masters' public token key");
        }
        return new TokenKeys(key, path);
    }

    /// <summary>The public half of the key (PEM), for servers that only check tokens.</summary>
    public string PublicKeyPem() => _key.ExportSubjectPublicKeyInfoPem();

    /// <summary>A signed token for <paramref name="principal"/>, valid from now for <paramref name="ttl"/>.</summary>
    public string Issue(string principal, TimeSpan ttl, DateTimeOffset now)
    {
        ArgumentException.ThrowIfNullOrEmpty(principal);
        var handler = new JsonWebTokenHandler();
        return handler.CreateToken(new SecurityTokenDescriptor
        {
            Subject = new ClaimsIdentity([new Claim("sub", principal), new Claim("jti", Guid.NewGuid().ToString("N"))]),
            Issuer = Issuer,
            Audience = Audience,
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = (now + ttl).UtcDateTime,
            // Not cached: the factory's cache is keyed by the key's thumbprint and would outlive a
            // disposed TokenKeys (the same key file loaded again would sign with a disposed key).
            SigningCredentials = new SigningCredentials(SecurityKey, SecurityAlgorithms.EcdsaSha256) { CryptoProviderFactory = Uncached },
        });
    }

    /// <summary>What a server checks: signature by this key, issuer, audience, expiry (30 s skew).</summary>
    public TokenValidationParameters ValidationParameters() => new()
    {
        ValidIssuer = Issuer,
        ValidAudience = Audience,
        IssuerSigningKey = SecurityKey,
        ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
        RequireExpirationTime = true,
        RequireSignedTokens = true,
        ClockSkew = TimeSpan.FromSeconds(30),
        NameClaimType = "sub",
    };

    private static readonly CryptoProviderFactory Uncached = new() { CacheSignatureProviders = false };

    /// <summary>Checks a token outside a server (tests, tools); the principal, or an error.</summary>
    public async Task<(string? Principal, string? Error)> ValidateAsync(string token)
    {
        var parameters = ValidationParameters();
        parameters.CryptoProviderFactory = Uncached;
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, parameters).ConfigureAwait(false);
        return result.IsValid ? (result.ClaimsIdentity.Name, null) : (null, result.Exception?.Message ?? "invalid token");
    }

    private static string KeyIdOf(ECDsa key)
        => Convert.ToHexString(SHA256.HashData(key.ExportSubjectPublicKeyInfo()))[..16].ToLowerInvariant();

    public void Dispose() => _key.Dispose();
}
