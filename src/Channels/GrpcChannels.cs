using System.Net;
using Grpc.Net.Client;

namespace Scheduler.Channels;

/// <summary>
/// Creates <see cref="GrpcChannel"/>s (Grpc.Net.Client) with the project's transport settings: one
/// <see cref="SocketsHttpHandler"/> per channel, HTTP/2 keepalive pings, no idle-connection expiry,
/// more connections when one reaches the server's stream limit. Share one channel per address.
/// </summary>
public static class GrpcChannels
{
    /// <summary>A channel to <c>host:port</c> (TLS when <see cref="GrpcChannelSettings.Tls"/> is set,
    /// else plain h2c), <c>http://host:port</c> or <c>https://host:port</c>.</summary>
    /// <exception cref="ArgumentException">When <paramref name="address"/> is not one of these forms.</exception>
    public static GrpcChannel ForAddress(string address, GrpcChannelSettings? settings = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(address);
        settings ??= new GrpcChannelSettings();
        var text = address.Contains("://", StringComparison.Ordinal) ? address : (settings.Tls is null ? "http://" : "https://") + address;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"'{address}' is not a gRPC address; use host:port, http://host:port or https://host:port.", nameof(address));
        }
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = settings.EnableMultipleHttp2Connections,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            ConnectTimeout = settings.ConnectTimeout,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            AutomaticDecompression = DecompressionMethods.None,
            AllowAutoRedirect = false,
            UseCookies = false,
            UseProxy = false,
            InitialHttp2StreamWindowSize = 2 * 1024 * 1024,
        };
        if (settings.KeepAlivePingDelay > TimeSpan.Zero && settings.KeepAlivePingDelay != Timeout.InfiniteTimeSpan)
        {
            handler.KeepAlivePingDelay = settings.KeepAlivePingDelay < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : settings.KeepAlivePingDelay;
            handler.KeepAlivePingTimeout = settings.KeepAlivePingTimeout;
        }
        settings.Tls?.Apply(handler.SslOptions);
        if (settings.ServerCertificateValidation is not null)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = settings.ServerCertificateValidation;
        }
        return GrpcChannel.ForAddress(uri, new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = settings.MaxReceiveMessageSize,
            MaxSendMessageSize = settings.MaxSendMessageSize,
        });
    }
}
