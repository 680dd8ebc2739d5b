using System.Net;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;

namespace Scheduler.Hosting;

/// <summary>One listening endpoint: plain h2c, or TLS (ALPN h2) when a certificate is given here
/// or in <see cref="GrpcServerOptions.Tls"/>.</summary>
public sealed record GrpcEndpoint(IPEndPoint EndPoint, X509Certificate2? Certificate = null);

/// <summary>Settings of a <see cref="GrpcServer"/> (Kestrel and Grpc.AspNetCore).</summary>
public sealed class GrpcServerOptions
{
    public List<GrpcEndpoint> Endpoints { get; } = [];

    /// <summary>TLS (and mutual TLS) of every endpoint that has no <see cref="GrpcEndpoint.Certificate"/>
    /// of its own; null = plaintext.</summary>
    public ServerTls? Tls { get; set; }

    /// <summary>Largest request message accepted (bytes); larger → RESOURCE_EXHAUSTED.</summary>
    public int MaxReceiveMessageSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>Largest response message sent (bytes); larger → RESOURCE_EXHAUSTED.</summary>
    public int MaxSendMessageSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>HTTP/2 concurrent streams per connection.</summary>
    public int MaxConcurrentStreams { get; set; } = 1000;

    /// <summary>Server keepalive: PING idle connections after this long (null = off).</summary>
    public TimeSpan? KeepAlivePingDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A connection whose PING is not answered within this time is closed.</summary>
    public TimeSpan KeepAlivePingTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>How long a stop waits for running calls before aborting their connections.</summary>
    public TimeSpan StopTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>Serve <c>grpc.reflection.v1alpha.ServerReflection</c> (service listing for grpcurl and the like).</summary>
    public bool EnableReflection { get; set; } = true;

    /// <summary>Interceptors around every call, outermost first (besides the logging one every server has).</summary>
    public List<Interceptor> Interceptors { get; } = [];

    /// <summary>Who may call: null serves every call unauthenticated.</summary>
    public ServerAuthentication? Authentication { get; set; }

    public ILoggerFactory? LoggerFactory { get; set; }
}
