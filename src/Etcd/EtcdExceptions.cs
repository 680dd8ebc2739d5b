using Grpc.Core;

namespace Scheduler.Etcd;

/// <summary>etcd answered a request with an error that retrying elsewhere does not fix.</summary>
public class EtcdException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The gRPC status of the failed call, when there was one.</summary>
    public StatusCode? StatusCode => (InnerException as RpcException)?.StatusCode;
}

/// <summary>No etcd endpoint answered within the request timeout (all down, unreachable, or no quorum).</summary>
public sealed class EtcdUnavailableException(string message, Exception? inner = null) : EtcdException(message, inner);

/// <summary>
/// A watch could not resume: the revision it needed was compacted away, so events in between are
/// lost. The caller must re-read the state (Range) and watch again from the revision it read at.
/// </summary>
public sealed class EtcdCompactedException(long requestedRevision, long compactRevision)
    : EtcdException($"etcd compacted its history up to revision {compactRevision}; the watch needed revision {requestedRevision}. Re-read the keys and watch again from the revision read.")
{
    public long RequestedRevision { get; } = requestedRevision;

    public long CompactRevision { get; } = compactRevision;
}

/// <summary>The lease kept by a <see cref="LeaseKeeper"/> is gone (expired, revoked, or not renewed in time).</summary>
public sealed class EtcdLeaseLostException(string message, Exception? inner = null) : EtcdException(message, inner);
