using System.Security.Cryptography.X509Certificates;
using Grpc.Core;

namespace Scheduler.Hosting;

/// <summary>The client certificate of a call, as the TLS layer of a <see cref="GrpcServer"/>
/// validated it (a certificate that does not chain to the server's CA fails the handshake, so
/// one seen here is valid).</summary>
public static class ClientCertificates
{
    private const string CommonNameOid = "2.5.4.3";

    /// <summary>Whether the call came over TLS.</summary>
    public static bool IsTls(ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.GetHttpContext().Request.IsHttps;
    }

    /// <summary>The validated client certificate of the call; null when none was presented.</summary>
    public static X509Certificate2? Of(ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.GetHttpContext().Connection.ClientCertificate;
    }

    /// <summary>
    /// The principal a call's client certificate names: its subject's common name (CN), or else
    /// the first DNS name, else the first IP address, of its subject alternative names. Null when
    /// no certificate was presented or it names nothing.
    /// </summary>
    public static string? PrincipalOf(ServerCallContext context) => Of(context) is { } certificate ? PrincipalOf(certificate) : null;

    /// <summary>The principal <paramref name="certificate"/> names (see <see cref="PrincipalOf(ServerCallContext)"/>).</summary>
    public static string? PrincipalOf(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var commonName = certificate.SubjectName.EnumerateRelativeDistinguishedNames()
            .Where(r => !r.HasMultipleElements && r.GetSingleElementType().Value == CommonNameOid)
            .Select(r => r.GetSingleElementValue())
            .FirstOrDefault(v => !string.IsNullOrEmpty(v));
        if (commonName is not null)
        {
            return commonName;
        }
        var names = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault();
        if (names is null)
        {
            return null;
        }
        var dns = names.EnumerateDnsNames().FirstOrDefault();
        if (dns is not null)
        {
            return dns;
        }
        var ip = names.EnumerateIPAddresses().FirstOrDefault();
        return ip?.ToString();
    }

    /// <summary>
    /// Refuses a TLS call without a client certificate with UNAUTHENTICATED saying what to present
    /// (plaintext calls pass: the server runs without TLS). For services only peers holding a
    /// certificate from the cluster's CA may use (the agents' link).
    /// </summary>
    /// <param name="context">The call.</param>
    /// <param name="hint">What the caller should present, e.g. "agent run --tls-cert FILE --tls-key FILE".</param>
    /// <returns>The certificate's principal; empty on a plaintext call.</returns>
    public static string Require(ServerCallContext context, string hint)
    {
        if (!IsTls(context))
        {
            return "";
        }
        var certificate = Of(context)
            ?? throw new RpcException(new Status(StatusCode.Unauthenticated, $"{context.Method} needs a client certificate issued by this cluster's CA and the call presented none; {hint}"));
        return PrincipalOf(certificate)
            ?? throw new RpcException(new Status(StatusCode.Unauthenticated, $"the client certificate '{certificate.Subject}' names no principal (no CN and no subject alternative name); issue one with CN=<principal>"));
    }
}
