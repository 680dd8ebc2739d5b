namespace Scheduler.Rpc;

/// <summary>Per-call options of a client call.</summary>
/// <param name="Headers">Request metadata.</param>
/// <param name="Deadline">Absolute UTC deadline; sent as <c>grpc-timeout</c>; null = none.</param>
/// <param name="CancellationToken">Cancels the call (the client resets the stream).</param>
public readonly record struct CallOptions(Metadata? Headers = null, DateTime? Deadline = null, CancellationToken CancellationToken = default)
{
    public CallOptions WithDeadline(DateTime deadline) => this with { Deadline = deadline };

    public CallOptions WithTimeout(TimeSpan timeout) => this with { Deadline = DateTime.UtcNow + timeout };

    public CallOptions WithCancellationToken(CancellationToken cancellationToken) => this with { CancellationToken = cancellationToken };

    public CallOptions WithHeaders(Metadata headers) => this with { Headers = headers };
}
