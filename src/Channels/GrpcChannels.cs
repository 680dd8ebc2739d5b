using System.Net;
using Grpc.Core;
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
        var secure = uri.Scheme == Uri.UriSchemeHttps;
        var options = new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = settings.MaxReceiveMessageSize,
            MaxSendMessageSize = settings.MaxSendMessageSize,
        };
        if (settings.BearerToken is { Length: > 0 } token)
        {
            var header = "Bearer " + token;
            var call = CallCredentials.FromInterceptor((_, metadata) =>
            {
                metadata.Add("authorization", header);
                return Task.CompletedTask;
            });
            options.Credentials = ChannelCredentials.Create(secure ? ChannelCredentials.SecureSsl : ChannelCredentials.Insecure, call);
            // Plain h2c is for loopback and trusted networks; the token goes with it there too.
            options.UnsafeUseInsecureChannelCallCredentials = !secure;
        }
        return GrpcChannel.ForAddress(uri, options);
    }

    /// <summary>Reads a token file (surrounding white space ignored), saying what is wrong when it cannot.</summary>
    /// <exception cref="InvalidOperationException">When the file cannot be read or is empty.</exception>
    public static string ReadTokenFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string text;
        try
        {
            text = File.ReadAllText(path).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"cannot read the token file {path}: {e.Message}", e);
        }
        if (text.Length == 0 || text.Any(char.IsWhiteSpace))
        {
            throw new InvalidOperationException($"the token file {path} does not hold one token (it is empty or has white space inside); write the token alone in it");
        }
        return text;
    }
}
