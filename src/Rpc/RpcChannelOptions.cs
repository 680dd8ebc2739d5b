using System.Net.Security;

namespace Scheduler.Rpc;

/// <summary>Client channel settings.</summary>
public sealed class RpcChannelOptions
{
    /// <summary>Largest response message accepted (bytes); larger → RESOURCE_EXHAUSTED.</summary>
    public int MaxReceiveMessageSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>Largest request message sent (bytes); larger → RESOURCE_EXHAUSTED, not sent.</summary>
    public int MaxSendMessageSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>HTTP/2 PING after this much idle time on a connection.</summary>
    public TimeSpan KeepAlivePingDelay { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>A connection whose PING is not answered within this time is closed.</summary>
    public TimeSpan KeepAlivePingTimeout { get; set; } = TimeSpan.FromSeconds(10);

    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Open more connections when one reaches its concurrent-stream limit.</summary>
    public bool EnableMultipleHttp2Connections { get; set; } = true;

    /// <summary>Validates the server certificate for https addresses; null = system trust.</summary>
    public RemoteCertificateValidationCallback? ServerCertificateValidation { get; set; }

    /// <summary>Compress request messages with this encoding (<c>gzip</c>); null = none.</summary>
    public string? RequestCompression { get; set; }
}
