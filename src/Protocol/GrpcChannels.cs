using System.Net;
using System.Net.Security;
using Grpc.Net.Client;

namespace Scheduler.Protocol;

/// <summary>Client channel settings shared by the SDK, the CLI and the agent's link.</summary>
public sealed class GrpcChannelSettings
{
    /// <summary>Largest response message accepted (bytes); larger → RESOURCE_EXHAUSTED.</summary>
    public int MaxReceiveMessageSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>Largest request message sent (bytes); larger → RESOURCE_EXHAUSTED, not sent.</summary>
    public int MaxSendMessageSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>HTTP/2 PING after this much idle time on a connection (at least 1 s; infinite = off).
    /// Pings are sent with or without active calls, which our Kestrel servers accept at any rate;
    /// a grpc-core or grpc-go server enforces a minimum interval (5 min by default) and closes a
    /// connection that pings more often ("too many pings"), so against those set at least that.</summary>
    public TimeSpan KeepAlivePingDelay { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>A connection whose PING is not answered within this time is closed, failing its calls.</summary>
    public TimeSpan KeepAlivePingTimeout { get; set; } = TimeSpan.FromSeconds(10);

    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Open more connections when one reaches its concurrent-stream limit.</summary>
    public bool EnableMultipleHttp2Connections { get; set; } = true;

    /// <summary>Validates the server certificate for https addresses; null = system trust.</summary>
    public RemoteCertificateValidationCallback? ServerCertificateValidation { get; set; }
}

/// <summary>
/// Creates <see cref="GrpcChannel"/>s (Grpc.Net.Client) with the project's transport settings: one
/// <see cref="SocketsHttpHandler"/> per channel, HTTP/2 keepalive pings, no idle-connection expiry,
/// more connections when one reaches the server's stream limit. Share one channel per address.
/// </summary>
public static class GrpcChannels
{
    /// <summary>A channel to <c>host:port</c> (plain h2c), <c>http://host:port</c> or <c>https://host:port</c>.</summary>
    /// <exception cref="ArgumentException">When <paramref name="address"/> is not one of these forms.</exception>
    public static GrpcChannel ForAddress(string address, GrpcChannelSettings? settings = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(address);
        settings ??= new GrpcChannelSettings();
        var text = address.Contains("://", StringComparison.Ordinal) ? address : "http://" + address;
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
