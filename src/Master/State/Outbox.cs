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
    private const int MaxUnflushed = 256;
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
        // Several queued messages leave with one flush (bounded, so a long burst still goes
        // out in pieces): a framework receiving 100,000 updates a second, or an agent its launches
        // and pings, costs a frame and a system call per burst, not per message.
        var buffered = writer as IBufferedStreamWriter<T>;
        try
        {
            while (await _channel.Reader.WaitToReadAsync(cancellationToken))
            {
                var unflushed = 0;
                while (_channel.Reader.TryRead(out var message))
                {
                    if (buffered is not null && unflushed < MaxUnflushed && _channel.Reader.TryPeek(out _))
                    {
                        await buffered.WriteAsync(message, flush: false, cancellationToken);
                        unflushed++;
                    }
                    else
                    {
                        await writer.WriteAsync(message, cancellationToken);
                        unflushed = 0;
                    }
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
