using Scheduler.Channels.Tls;

namespace Scheduler.Hosting;

/// <summary>Whether a TLS server asks callers for a client certificate.</summary>
public enum ClientCertificatePolicy
{
    /// <summary>Callers present one or not; one presented must chain to the CA, else the
    /// handshake fails. Callers without one authenticate otherwise (a bearer token), and services
    /// that need a certificate check <see cref="ClientCertificates.Require"/>.</summary>
    Allowed,

    /// <summary>The handshake fails without a certificate that chains to the CA.</summary>
    Required,
}

/// <summary>
/// TLS of a <see cref="GrpcServer"/>: the certificate it serves and, for mutual TLS, the CA client
/// certificates must chain to. Files are reloaded when they change, without a restart: the next
/// handshake uses the new certificate or CA (connections already open keep theirs).
/// </summary>
public sealed class ServerTls
{
    /// <summary>Serves <paramref name="certificate"/>; checks client certificates against
    /// <paramref name="clientAuthority"/> when given (none are asked for otherwise).</summary>
    public ServerTls(CertificateFile certificate, CertificateAuthority? clientAuthority = null, ClientCertificatePolicy policy = ClientCertificatePolicy.Allowed)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        Certificate = certificate;
        ClientAuthority = clientAuthority;
        Policy = policy;
    }

    public CertificateFile Certificate { get; }

    public CertificateAuthority? ClientAuthority { get; }

    public ClientCertificatePolicy Policy { get; }

    /// <summary>
    /// TLS from the daemons' <c>--tls-cert --tls-key --tls-ca</c>: null when none is given
    /// (plaintext). All three go together: the CA both validates callers' certificates and, on the
    /// daemon's own calls, the servers'.
    /// </summary>
    /// <exception cref="TlsFileException">When only some are given, or a file does not load.</exception>
    public static ServerTls? FromFiles(TlsFiles? files, ClientCertificatePolicy policy = ClientCertificatePolicy.Allowed)
    {
        var (certificatePath, keyPath, caPath) = (files?.Certificate, files?.Key, files?.Ca);
        var given = new[] { certificatePath, keyPath, caPath }.Count(p => !string.IsNullOrWhiteSpace(p));
        if (given == 0)
        {
            return null;
        }
        if (given != 3)
        {
            var missing = new[] { ("--tls-cert", certificatePath), ("--tls-key", keyPath), ("--tls-ca", caPath) }
                .Where(p => string.IsNullOrWhiteSpace(p.Item2)).Select(p => p.Item1);
            throw new TlsFileException($"TLS needs --tls-cert, --tls-key and --tls-ca together (the CA checks the certificates of callers and of the servers this daemon calls); missing {string.Join(", ", missing)}");
        }
        return new ServerTls(new CertificateFile(certificatePath!, keyPath!), new CertificateAuthority(caPath!), policy);
    }
}
