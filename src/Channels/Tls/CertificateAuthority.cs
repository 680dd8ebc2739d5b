using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Scheduler.Channels.Tls;

/// <summary>
/// The certificate authorities a peer's certificate must chain to: the certificates of one PEM file
/// (a root, or a root and intermediates), trusted instead of the system's store. The file is
/// re-read when it changes (checked at each validation, i.e. once per TLS handshake). Thread-safe.
/// </summary>
public sealed class CertificateAuthority
{
    private readonly Lock _lock = new();
    private X509Certificate2Collection _current;
    private (DateTime, long) _stamp;

    /// <summary>Loads the file now.</summary>
    /// <exception cref="TlsFileException">When the file is missing or holds no PEM certificate.</exception>
    public CertificateAuthority(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Path = System.IO.Path.GetFullPath(path);
        _stamp = Stamp();
        _current = Load(Path);
    }

    public string Path { get; }

    /// <summary>The CA certificates as the file holds them now (or as last loaded).</summary>
    public X509Certificate2Collection Current
    {
        get
        {
            lock (_lock)
            {
                var stamp = Stamp();
                if (stamp != _stamp)
                {
                    try
                    {
                        _current = Load(Path);
                        _stamp = stamp;
                    }
                    catch (TlsFileException)
                    {
                        // Half-written file: keep the previous authorities; the next read retries.
                    }
                }
                return _current;
            }
        }
    }

    /// <summary>
    /// Whether <paramref name="certificate"/> chains to one of these authorities and is within its
    /// validity period (as are the certificates above it). Revocation is not checked.
    /// </summary>
    /// <param name="certificate">The peer's certificate.</param>
    /// <param name="presentedChain">Intermediates the peer sent, if any.</param>
    /// <param name="problem">Why not, when false.</param>
    public bool Validate(X509Certificate2 certificate, X509Chain? presentedChain, out string problem)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.CustomTrustStore.AddRange(Current);
        if (presentedChain is not null)
        {
            foreach (var element in presentedChain.ChainElements)
            {
                if (!element.Certificate.Equals(certificate))
                {
                    chain.ChainPolicy.ExtraStore.Add(element.Certificate);
                }
            }
        }
        if (chain.Build(certificate))
        {
            problem = "";
            return true;
        }
        var statuses = chain.ChainStatus.Select(s => s.Status).Distinct().ToList();
        problem = statuses.Contains(X509ChainStatusFlags.NotTimeValid)
            ? $"the certificate '{certificate.Subject}' is outside its validity period ({certificate.NotBefore:u} to {certificate.NotAfter:u})"
            : statuses.Contains(X509ChainStatusFlags.UntrustedRoot) || statuses.Contains(X509ChainStatusFlags.PartialChain)
                ? $"the certificate '{certificate.Subject}' (issued by '{certificate.Issuer}') is not issued by a CA in {Path}"
                : $"the certificate '{certificate.Subject}' does not validate: {string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()))}";
        return false;
    }

    private static X509Certificate2Collection Load(string path)
    {
        TlsFileException.RequireFile(path, "CA");
        var collection = new X509Certificate2Collection();
        try
        {
            collection.ImportFromPemFile(path);
        }
        catch (CryptographicException e)
        {
            throw new TlsFileException($"cannot read the CA file {path}: {e.Message} (it must hold PEM certificates)", e);
        }
        if (collection.Count == 0)
        {
            throw new TlsFileException($"the CA file {path} holds no PEM certificate ('-----BEGIN CERTIFICATE-----')");
        }
        return collection;
    }

    private (DateTime, long) Stamp()
    {
        var file = new FileInfo(Path);
        return (file.LastWriteTimeUtc, file.Exists ? file.Length : -1);
    }
}
