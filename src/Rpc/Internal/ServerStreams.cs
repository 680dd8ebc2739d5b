using Google.Protobuf;

namespace Scheduler.Rpc.Internal;

/// <summary>The request stream of a client- or duplex-streaming server call.</summary>
internal sealed class ServerStreamReader<T>(HttpServerCallContext call, MessageParser<T> parser) : IAsyncStreamReader<T>
    where T : class, IMessage<T>
{
    private T? _current;

    public T Current => _current ?? throw new InvalidOperationException("No current message: call MoveNext first and check that it returned true.");

    public async Task<bool> MoveNext(CancellationToken cancellationToken = default)
    {
        // The call's own cancellation reaches the read through one registration per call; the
        // caller's token (if another) goes to the read itself. No linked source per message: a
        // stream open for hours waits in a read almost all the time.
        call.CancelReadsWithCall();
        // The previous message is the caller's now: a stream that waits for hours between
        // messages does not keep the last one alive meanwhile.
        _current = null;
        var token = cancellationToken == call.CancellationToken ? CancellationToken.None : cancellationToken;
        var reader = call.RequestReader;
        while (true)
        {
            var result = await reader.ReadAsync(token).ConfigureAwait(false);
            if (call.TryTakeMessage(reader, result, parser, token, out var message))
            {
                _current = message;
                return message is not null;
            }
        }
    }
}

/// <summary>The response stream of a server- or duplex-streaming server call. Each write is
/// flushed to the network; concurrent writes are serialised (await each one to keep order).</summary>
internal sealed class ServerStreamWriter<T> : IServerStreamWriter<T>, IBufferedStreamWriter<T>
    where T : class, IMessage<T>
{
    private readonly HttpServerCallContext _call;

    public ServerStreamWriter(HttpServerCallContext call)
    {
        _call = call;
        call.SerialiseWrites();
    }

    public Task WriteAsync(T message, CancellationToken cancellationToken = default)
        => _call.WriteMessageAsync(message, flush: true, cancellationToken);

    public Task WriteAsync(T message, bool flush, CancellationToken cancellationToken = default)
        => _call.WriteMessageAsync(message, flush, cancellationToken);
}
