using System.Net.Security;
using System.Net.Sockets;
using Grpc.Core;

namespace Scheduler.Cli;

/// <summary>
/// Says why a server could not be reached when the cause is the transport: a client without a CA
/// calling a server that serves TLS, or a client with one calling a plaintext server or one whose
/// certificate does not chain to the CA. Found by looking (one TCP connection and the start of a TLS
/// handshake, only to see whether the port shows a certificate), never by guessing.
/// </summary>
public static class TransportProbe
{
    /// <summary>A sentence naming the transport problem with <paramref name="address"/>, or null
    /// when the transport is not the problem (or the server cannot be reached at all).</summary>
    public static async Task<string?> ExplainAsync(string address, bool clientUsesTls, RpcException? failure)
    {
        ArgumentException.ThrowIfNullOrEmpty(address);
        var detail = failure is null ? "" : failure.Status.Detail + " " + failure.Status.DebugException?.ToString();
        if (clientUsesTls && detail.Contains("certificate", StringComparison.OrdinalIgnoreCase))
        {
            return UntrustedCertificate(address);
        }
        var servesTls = await ServesTlsAsync(address);
        return (clientUsesTls, servesTls) switch
        {
            (false, true) => $"{address} serves TLS and this client has no CA to check it with: give the cluster's CA file with --tls-ca or SCHED_TLS_CA (a dev cluster's is DIR/tls/ca.pem, printed by 'schedctl dev up')",
            (true, false) => $"{address} answers in plaintext, not TLS: leave out --tls-ca and SCHED_TLS_CA for a cluster run without TLS (dev up --insecure), or check --master",
            _ => null,
        };
    }

    /// <summary>What to say of a server whose certificate the client's CA does not accept.</summary>
    public static string UntrustedCertificate(string address) =>
        $"{address} serves a certificate that does not chain to the CA given (--tls-ca or SCHED_TLS_CA), or that does not name the host: give the cluster's CA file (a dev cluster's is DIR/tls/ca.pem)";

    /// <summary>True when the port shows a TLS certificate, false when it answers otherwise,
    /// null when nothing answers.</summary>
    public static async Task<bool?> ServesTlsAsync(string address, TimeSpan? timeout = null)
    {
        var (host, port) = Split(address);
        if (port is null)
        {
            return null;
        }
        using var limit = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(5));
        using var tcp = new TcpClient();
        try
        {
            await tcp.ConnectAsync(host, port.Value, limit.Token);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return null;
        }
        // The handshake is refused as soon as the server shows a certificate: seeing one is the
        // answer, and nothing is ever sent over a connection whose certificate was not checked.
        var sawCertificate = false;
        await using var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false, (_, certificate, _, _) =>
        {
            sawCertificate = certificate is not null;
            return false;
        });
        try
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = host,
                ApplicationProtocols = [SslApplicationProtocol.Http2],
            }, limit.Token);
        }
        catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or OperationCanceledException)
        {
            // Expected: refused by the callback, or not TLS at all.
        }
        return sawCertificate;
    }

    private static (string Host, int? Port) Split(string address)
    {
        var text = address;
        var scheme = text.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0)
        {
            text = text[(scheme + 3)..];
        }
        text = text.TrimEnd('/');
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port))
        {
            return (text, null);
        }
        return (text[..colon].Trim('[', ']'), port);
    }
}
