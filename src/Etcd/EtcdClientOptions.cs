using System.Net.Security;

namespace Scheduler.Etcd;

/// <summary>How to reach an etcd cluster.</summary>
public sealed class EtcdClientOptions
{
    /// <summary>
    /// Client URLs of the members: <c>host:port</c> or <c>http://host:port</c> (plain) or
    /// <c>https://host:port</c> (TLS). Requests fail over between them.
    /// </summary>
    public IList<string> Endpoints { get; init; } = [];

    /// <summary>Start at a random endpoint (spreads clients over members); false = start at the first.</summary>
    public bool ShuffleEndpoints { get; init; } = true;

    /// <summary>User name for etcd authentication; null = no authentication.</summary>
    public string? Username { get; init; }

    public string? Password { get; init; }

    /// <summary>Validates the members' certificates for https endpoints; null = system trust store.</summary>
    public RemoteCertificateValidationCallback? ServerCertificateValidation { get; init; }

    /// <summary>Total time a unary request may take, over all endpoints and retries.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Time one attempt on one endpoint may take before the next endpoint is tried.</summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>First retry delay after every endpoint failed once; doubles up to <see cref="MaxBackoff"/>, jittered.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(50);

    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Connection attempt timeout of the underlying channels.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Clock for timeouts and lease bookkeeping.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
