using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace Scheduler.Rpc;

/// <summary>One listening endpoint: plain h2c, or TLS (ALPN h2) when a certificate is given.</summary>
public sealed record RpcEndpoint(IPEndPoint EndPoint, X509Certificate2? Certificate = null);

/// <summary>Server settings.</summary>
public sealed class RpcServerOptions
{
    public List<RpcEndpoint> Endpoints { get; } = [];

    /// <summary>Largest request message accepted (bytes); larger → RESOURCE_EXHAUSTED.</summary>
    public int MaxReceiveMessageSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>Largest response message sent (bytes).</summary>
    public int MaxSendMessageSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>HTTP/2 concurrent streams per connection.</summary>
    public int MaxConcurrentStreams { get; set; } = 1000;

    /// <summary>Server keepalive: PING idle connections after this long (null = off).</summary>
    public TimeSpan? KeepAlivePingDelay { get; set; } = TimeSpan.FromSeconds(30);

    public TimeSpan KeepAlivePingTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Returned 4 KiB I/O buffers the server keeps for reuse (per pool Kestrel creates);
    /// buffers returned beyond this are left to the garbage collector, so a burst (thousands of
    /// streams opening at once) does not leave megabytes pooled for the server's lifetime.</summary>
    public int MaxRetainedPoolBlocks { get; set; } = 256;

    public ILoggerFactory? LoggerFactory { get; set; }
}
