using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Scheduler.Channels.Tls;

/// <summary>
/// A small certificate authority (ECDSA P-256) that issues certificates for servers and clients:
/// the throwaway CA of a local cluster (<c>schedctl dev up</c>, the demo) and of tests. Not for
/// production clusters, whose certificates come from the operator's own CA
/// (docs/operations.md).
/// </summary>
public sealed class CertificateIssuer : IDisposable
{
    private CertificateIssuer(X509Certificate2 authority) => Authority = authority;

    /// <summary>The CA certificate, with its private key.</summary>
    public X509Certificate2 Authority { get; }

    /// <summary>A new self-signed CA named <paramref name="name"/>, valid from an hour before
    /// <paramref name="now"/> for <paramref name="lifetime"/>.</summary>
    public static CertificateIssuer Create(string name, DateTimeOffset now, TimeSpan lifetime)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName("CN=" + name), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 1, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return new CertificateIssuer(request.CreateSelfSigned(now.AddHours(-1), now.Add(lifetime)));
    }

    /// <summary>
    /// The CA kept in <paramref name="certificatePath"/> and <paramref name="keyPath"/> (PEM), or a
    /// new one written there (the key readable by the owner only) when either file is missing or
    /// the CA expires within <paramref name="renewWithin"/>. A local cluster restarted on the same
    /// work dir so keeps its CA, and clients keep trusting it.
    /// </summary>
    /// <exception cref="TlsFileException">When the files exist but do not load as a CA and its key.</exception>
    public static CertificateIssuer LoadOrCreate(string certificatePath, string keyPath, string name, DateTimeOffset now, TimeSpan lifetime, TimeSpan renewWithin)
    {
        ArgumentException.ThrowIfNullOrEmpty(certificatePath);
        ArgumentException.ThrowIfNullOrEmpty(keyPath);
        if (File.Exists(certificatePath) && File.Exists(keyPath))
        {
            X509Certificate2 loaded;
            try
            {
                loaded = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
            }
            catch (CryptographicException e)
            {
                throw new TlsFileException($"the CA in {certificatePath} with key {keyPath} does not load ({e.Message}); remove both files to have a new CA made");
            }
            if (loaded.NotAfter.ToUniversalTime() > now.UtcDateTime.Add(renewWithin) && loaded.NotBefore.ToUniversalTime() <= now.UtcDateTime)
            {
                return new CertificateIssuer(loaded);
            }
            loaded.Dispose();
        }
        var issuer = Create(name, now, lifetime);
        WritePem(issuer.Authority, certificatePath, keyPath);
        return issuer;
    }

    /// <summary>Whether <paramref name="certificate"/> was signed by this CA and is valid from
    /// <paramref name="now"/> for at least <paramref name="remaining"/>.</summary>
    public bool Issued(X509Certificate2 certificate, DateTimeOffset now, TimeSpan remaining)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        if (certificate.NotBefore.ToUniversalTime() > now.UtcDateTime || certificate.NotAfter.ToUniversalTime() < now.UtcDateTime.Add(remaining))
        {
            return false;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = now.UtcDateTime;
        return chain.Build(certificate);
    }

    /// <summary>
    /// Issues a certificate for <paramref name="commonName"/> naming <paramref name="dnsNames"/> and
    /// <paramref name="addresses"/>, good for both server and client authentication, valid from
    /// <paramref name="notBefore"/> to <paramref name="notAfter"/> (clamped to the CA's validity).
    /// </summary>
    public X509Certificate2 Issue(string commonName, IEnumerable<string> dnsNames, IEnumerable<IPAddress> addresses, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        ArgumentException.ThrowIfNullOrEmpty(commonName);
        ArgumentNullException.ThrowIfNull(dnsNames);
        ArgumentNullException.ThrowIfNull(addresses);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName("CN=" + commonName), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([Oid.FromOidValue("1.3.6.1.5.5.7.3.1", OidGroup.EnhancedKeyUsage), Oid.FromOidValue("1.3.6.1.5.5.7.3.2", OidGroup.EnhancedKeyUsage)], false));
        var names = new SubjectAlternativeNameBuilder();
        foreach (var dns in dnsNames)
        {
            names.AddDnsName(dns);
        }
        foreach (var address in addresses)
        {
            names.AddIpAddress(address);
        }
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Authority, true, false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        if (notBefore < Authority.NotBefore)
        {
            notBefore = Authority.NotBefore;
        }
        if (notAfter > Authority.NotAfter)
        {
            notAfter = Authority.NotAfter;
        }
        var serial = new byte[16];
        RandomNumberGenerator.Fill(serial);
        serial[0] &= 0x7f;
        using var issued = request.Create(Authority, notBefore, notAfter, serial);
        return issued.CopyWithPrivateKey(key);
    }

    /// <summary>Issues a certificate for a daemon or client on this host: names <c>localhost</c>,
    /// <c>127.0.0.1</c> and <c>::1</c>, valid as long as the CA.</summary>
    public X509Certificate2 IssueForLoopback(string commonName) =>
        Issue(commonName, ["localhost"], [IPAddress.Loopback, IPAddress.IPv6Loopback], Authority.NotBefore, Authority.NotAfter);

    /// <summary>Writes <paramref name="certificate"/> as PEM to <paramref name="certificatePath"/>
    /// and, when given, its private key (PKCS#8 PEM) to <paramref name="keyPath"/>, readable by the
    /// owner only (0600). Each file is written beside and renamed into place, so that a reader
    /// (a server reloading it) never sees half a file.</summary>
    public static void WritePem(X509Certificate2 certificate, string certificatePath, string? keyPath = null)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        if (keyPath is not null)
        {
            using var key = (AsymmetricAlgorithm?)certificate.GetECDsaPrivateKey() ?? certificate.GetRSAPrivateKey()
                ?? throw new ArgumentException($"the certificate '{certificate.Subject}' has no private key to write", nameof(certificate));
            WriteFile(keyPath, key.ExportPkcs8PrivateKeyPem(), secret: true);
        }
        WriteFile(certificatePath, certificate.ExportCertificatePem() + "\n", secret: false);
    }

    /// <summary>Writes the CA certificate (no key) to <paramref name="path"/>.</summary>
    public void WriteAuthority(string path) => WritePem(Authority, path);

    public void Dispose() => Authority.Dispose();

    private static void WriteFile(string path, string text, bool secret)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temporary = full + ".tmp-" + Environment.ProcessId;
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (secret && !OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using (var stream = new FileStream(temporary, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(text);
            if (!text.EndsWith('\n'))
            {
                writer.Write('\n');
            }
        }
        File.Move(temporary, full, overwrite: true);
    }
}
