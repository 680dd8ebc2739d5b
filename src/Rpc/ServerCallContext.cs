namespace Scheduler.Rpc;

/// <summary>What a server handler knows about the call it serves.</summary>
public abstract class ServerCallContext
{
    /// <summary>The method path, <c>/sched.v1.Scheduler/Accept</c>.</summary>
    public abstract string Method { get; }

    /// <summary>The remote address, <c>ipv4:127.0.0.1:50123</c>.</summary>
    public abstract string Peer { get; }

    /// <summary>The client's deadline (UTC), or <see cref="DateTime.MaxValue"/>.</summary>
    public abstract DateTime Deadline { get; }

    /// <summary>Cancelled when the client cancels, the deadline passes or the server stops.</summary>
    public abstract CancellationToken CancellationToken { get; }

    public abstract Metadata RequestHeaders { get; }

    /// <summary>Trailers sent with the final status; handlers may add entries.</summary>
    public abstract Metadata ResponseTrailers { get; }

    /// <summary>The status sent when the handler returns normally (default OK).</summary>
    public abstract Status Status { get; set; }

    /// <summary>Sends response headers now (otherwise they go with the first message).</summary>
    public abstract Task WriteResponseHeadersAsync(Metadata responseHeaders);

    /// <summary>Cancels <see cref="CancellationToken"/> from the handler's side, which ends the
    /// call's pending reads and writes, without choosing the status: the client still gets what
    /// the handler returns or throws. For a streaming handler whose halves must end together; it
    /// spares such a handler a token source linked to this call's.</summary>
    public abstract void Cancel();
}

public delegate Task<TResponse> UnaryServerMethod<TRequest, TResponse>(TRequest request, ServerCallContext context);

public delegate Task<TResponse> ClientStreamingServerMethod<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context);

public delegate Task ServerStreamingServerMethod<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context);

public delegate Task DuplexStreamingServerMethod<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context);
