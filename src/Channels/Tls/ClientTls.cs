using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Scheduler.Channels.Tls;

/// <summary>
/// TLS of a client: whom it trusts (the cluster's CA, or the system's store when none is given)
/// and, for mutual TLS, the certificate it presents. With a <see cref="ClientTls"/>, channels to
/// bare <c>host:port</c> addresses use TLS (the addresses masters advertise and hint carry no
/// scheme). Files are reloaded when they change.
/// </summary>
public sealed class ClientTls
{
    private ClientTls(CertificateAuthority? authority, CertificateFile? certificate)
    {
        Authority = authority;
        Certificate = certificate;
    }

    /// <summary>The CA peers' certificates must chain to; null: the system's trust store.</summary>
    public CertificateAuthority? Authority { get; }

    /// <summary>The certificate presented to servers that ask for one; null: none.</summary>
    public CertificateFile? Certificate { get; }

    /// <summary>
    /// TLS settings from file paths; null when none is given (plaintext). A certificate needs its
    /// key and the reverse.
    /// </summary>
    /// <exception cref="TlsFileException">When only one of certificate and key is given, or a file does not load.</exception>
    public static ClientTls? FromFiles(string? caPath, string? certificatePath = null, string? keyPath = null)
    {
        caPath = string.IsNullOrWhiteSpace(caPath) ? null : caPath;
        certificatePath = string.IsNullOrWhiteSpace(certificatePath) ? null : certificatePath;
        keyPath = string.IsNullOrWhiteSpace(keyPath) ? null : keyPath;
        if ((certificatePath is null) != (keyPath is null))
        {
            throw new TlsFileException(certificatePath is null
                ? "a TLS key was given without its certificate: give --tls-cert as well"
                : "a TLS certificate was given without its private key: give --tls-key as well");
        }
        if (caPath is null && certificatePath is null)
        {
            return null;
        }
        return new ClientTls(
            caPath is null ? null : new CertificateAuthority(caPath),
            certificatePath is null ? null : new CertificateFile(certificatePath, keyPath!));
    }

    /// <summary>TLS settings from <paramref name="files"/> (see <see cref="FromFiles(string?, string?, string?)"/>).</summary>
    public static ClientTls? FromFiles(TlsFiles? files) => files is null ? null : FromFiles(files.Ca, files.Certificate, files.Key);

    /// <summary>From in-memory parts (tests, embedding): trusts <paramref name="authority"/>, presents <paramref name="certificate"/>.</summary>
    public static ClientTls Of(CertificateAuthority? authority, CertificateFile? certificate) => new(authority, certificate);

    /// <summary>Applies these settings to a handler's TLS options.</summary>
    internal void Apply(SslClientAuthenticationOptions ssl)
    {
        if (Authority is { } authority)
        {
            ssl.RemoteCertificateValidationCallback = (_, presented, chain, errors) =>
            {
                // The host name check stays SslStream's; the chain is judged against our CA only.
                if (presented is null || (errors & (SslPolicyErrors.RemoteCertificateNotAvailable | SslPolicyErrors.RemoteCertificateNameMismatch)) != 0)
                {
                    return false;
                }
                if (presented is X509Certificate2 certificate)
                {
                    return authority.Validate(certificate, chain, out string _);
                }
                using var copy = new X509Certificate2(presented);
                return authority.Validate(copy, chain, out string _);
            };
        }
        if (Certificate is { } own)
        {
            ssl.LocalCertificateSelectionCallback = (_, _, _, _, _) => own.Current;
        }
    }
}
