namespace Scheduler.Rpc;

/// <summary>
/// A call ended with a non-OK status. Thrown by clients when the server answers an error, and
/// thrown by server handlers to answer one (its status and trailers are sent to the client).
/// </summary>
public class RpcException : Exception
{
    public RpcException(Status status)
        : this(status, new Metadata(), null)
    {
    }

    public RpcException(Status status, Metadata trailers)
        : this(status, trailers, null)
    {
    }

    public RpcException(Status status, Metadata trailers, string? message)
        : base(message ?? status.ToString())
    {
        Status = status;
        Trailers = trailers;
    }

    public Status Status { get; }

    public StatusCode StatusCode => Status.StatusCode;

    public Metadata Trailers { get; }
}
