using System.Threading.Channels;
using Scheduler.Rpc;

namespace Scheduler.Master.State;

/// <summary>
/// The outgoing side of one open stream (a framework subscription, an agent link, an operator
/// subscription). The master loop writes without waiting; the RPC handler drains it to the wire.
/// Closing it with an <see cref="RpcException"/> ends the call with that status.
/// </summary>
public sealed class Outbox<T>
{
    private readonly Channel<T> _channel = Channel.CreateUnbounded<T>(new UnboundedChannelOptions { SingleReader = true });

    public ChannelReader<T> Reader => _channel.Reader;

    public bool IsClosed { get; private set; }

    /// <summary>Queues a message; false when the stream is already closed.</summary>
    public bool Send(T message) => !IsClosed && _channel.Writer.TryWrite(message);

    /// <summary>Ends the stream: normally (null) or with the status of <paramref name="error"/>.</summary>
    public void Close(RpcException? error = null)
    {
        if (IsClosed)
        {
            return;
        }
        IsClosed = true;
        _channel.Writer.TryComplete(error);
    }

    /// <summary>Writes queued messages to <paramref name="writer"/> until the outbox closes; rethrows
    /// the closing <see cref="RpcException"/>.</summary>
    public async Task DrainToAsync(IAsyncStreamWriter<T> writer, CancellationToken cancellationToken)
    {
        try
        {
            while (await _channel.Reader.WaitToReadAsync(cancellationToken))
            {
                while (_channel.Reader.TryRead(out var message))
                {
                    await writer.WriteAsync(message, cancellationToken);
                }
            }
        }
        catch (ChannelClosedException e) when (e.InnerException is RpcException rpc)
        {
            throw new RpcException(rpc.Status, rpc.Trailers);
        }
        catch (RpcException rpc) when (_channel.Reader.Completion.IsFaulted)
        {
            throw new RpcException(rpc.Status, rpc.Trailers);
        }
    }
}
