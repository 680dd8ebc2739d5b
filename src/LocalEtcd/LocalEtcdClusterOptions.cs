namespace Scheduler.LocalEtcd;

/// <summary>Settings of a <see cref="LocalEtcdCluster"/>.</summary>
public sealed class LocalEtcdClusterOptions
{
    public int Members { get; init; } = 3;

    /// <summary>Where the members' data dirs and logs go; null = a new temp dir, deleted on dispose.</summary>
    public string? BaseDirectory { get; init; }

    /// <summary>Keep <see cref="BaseDirectory"/> on dispose (for <c>schedctl dev up</c>).</summary>
    public bool KeepData { get; init; }

    /// <summary>Raft heartbeat interval (etcd's default 100 ms).</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Raft election timeout (etcd's default 1 s).</summary>
    public TimeSpan ElectionTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long to wait for members to become healthy.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Further etcd flags, e.g. <c>--max-txn-ops=1024</c>.</summary>
    public IList<string> ExtraArguments { get; init; } = [];

    /// <summary>
    /// Serve clients over TLS with this certificate and key (PEM files); null = plain HTTP/2.
    /// Peers still talk plain HTTP on loopback.
    /// </summary>
    public string? TlsCertificateFile { get; init; }

    public string? TlsKeyFile { get; init; }

    /// <summary>Receives the members' log lines (prefixed with the member name); null = log files only.</summary>
    public Action<string>? Log { get; init; }
}
