using System.Net.Security;
using Scheduler.Channels.Tls;

namespace Scheduler.Channels;

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

    /// <summary>TLS: whom to trust and what certificate to present. With it, bare <c>host:port</c>
    /// addresses are reached over TLS; without it, over plaintext h2c (https addresses still use
    /// TLS with the system's trust).</summary>
    public ClientTls? Tls { get; set; }

    /// <summary>Sent on every call as <c>authorization: Bearer TOKEN</c> (gRPC call credentials);
    /// null or empty: no credentials.</summary>
    public string? BearerToken { get; set; }

    /// <summary>Validates the server certificate for https addresses; null = <see cref="Tls"/>'s
    /// CA, else system trust. Takes precedence over <see cref="Tls"/>'s CA.</summary>
    public RemoteCertificateValidationCallback? ServerCertificateValidation { get; set; }

    /// <summary>A copy (the same <see cref="Tls"/> and callbacks) to adjust without touching this one.</summary>
    public GrpcChannelSettings Copy() => (GrpcChannelSettings)MemberwiseClone();
}
