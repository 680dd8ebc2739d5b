using Grpc.Net.Client;

namespace Scheduler.Etcd;

/// <summary>
/// One etcd member, reached through its own dotnet-etcd client: the library owns the channel, TLS
/// and the auth token (log-in, caching, renewal after Unauthenticated); <see cref="EtcdClient"/>
/// decides which member a request goes to.
/// </summary>
internal sealed class EtcdMember : IDisposable
{
    public EtcdMember(string endpoint, EtcdClientOptions options)
    {
        Address = endpoint;
        var uri = ParseEndpoint(endpoint);
        var secure = uri.Scheme == Uri.UriSchemeHttps;
        // The library names its channel static://<server name> (the calls' authority); the member's
        // own host, rather than the library's placeholder. Certificates are checked against the host
        // connected to, as with any https URL.
        var host = uri.Host;
        void Configure(GrpcChannelOptions channel) => ConfigureChannel(channel, options);
        Client = secure
            ? new dotnet_etcd.EtcdClient(uri.ToString(), ssl => ssl.RemoteCertificateValidationCallback = options.ServerCertificateValidation,
                uri.Port, host, Configure)
            : new dotnet_etcd.EtcdClient(uri.ToString(), uri.Port, host, Configure);
        if (options.Username is not null)
        {
            Client.SetCredentials(options.Username, options.Password!);
        }
    }

    /// <summary>The endpoint as given.</summary>
    public string Address { get; }

    public dotnet_etcd.EtcdClient Client { get; }

    /// <summary>Drops the cached auth token so that the next request logs in again.</summary>
    public void RenewCredentials(EtcdClientOptions options)
    {
        if (options.Username is not null)
        {
            Client.SetCredentials(options.Username, options.Password!);
        }
    }

    /// <summary><c>host:port</c>, <c>http://host:port</c> or <c>https://host:port</c> as a URI (plain HTTP without a scheme).</summary>
    public static Uri ParseEndpoint(string endpoint)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(endpoint);
        var text = endpoint.Contains("://", StringComparison.Ordinal) ? endpoint : "http://" + endpoint;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
            || string.IsNullOrEmpty(uri.Host) || uri.AbsolutePath is not ("/" or ""))
        {
            throw new ArgumentException(
                $"'{endpoint}' is not an etcd client URL; give host:port, http://host:port or https://host:port (e.g. 127.0.0.1:2379).", nameof(endpoint));
        }
        return uri;
    }

    private static void ConfigureChannel(GrpcChannelOptions channel, EtcdClientOptions options)
    {
        // One member per channel: when it fails, EtcdClient moves to the next member at once. The
        // library's retry policy would instead retry the same member after 1 to 5 s, longer than a
        // leader lease may go unrenewed, so it is dropped (the load-balancing choice stays).
        if (channel.ServiceConfig is { } config)
        {
            config.MethodConfigs.Clear();
            config.RetryThrottling = null;
        }
        // etcd's default maximum request is 1.5 MiB; responses (Range pages) may be larger.
        channel.MaxReceiveMessageSize = 64 * 1024 * 1024;
        channel.MaxSendMessageSize = 8 * 1024 * 1024;
        // A member that was down is tried again soon after it is back, not minutes later.
        channel.InitialReconnectBackoff = options.InitialBackoff;
        channel.MaxReconnectBackoff = options.MaxBackoff;
        if (channel.HttpHandler is SocketsHttpHandler http)
        {
            http.ConnectTimeout = options.ConnectTimeout;
            // A member that stops answering (paused, partitioned) loses its connection within seconds.
            http.KeepAlivePingDelay = TimeSpan.FromSeconds(5);
            http.KeepAlivePingTimeout = TimeSpan.FromSeconds(3);
        }
    }

    public void Dispose() => Client.Dispose();
}
