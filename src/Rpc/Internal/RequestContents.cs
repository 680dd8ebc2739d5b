using System.Buffers;
using System.Net;
using Google.Protobuf;

namespace Scheduler.Rpc.Internal;

/// <summary>Serialises one message into a pooled buffer and writes it as a single frame.</summary>
internal static class MessageFramer
{
    /// <summary>Frames <paramref name="message"/> into a rented buffer; the caller returns it.</summary>
    public static byte[] Frame<T>(T message, int maxSize, bool gzip, out int length)
        where T : IMessage<T>
    {
        var size = message.CalculateSize();
        if (size > maxSize)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"Sending message larger than max ({size} vs. {maxSize})"));
        }
        var buffer = ArrayPool<byte>.Shared.Rent(GrpcProtocol.HeaderSize + size);
        message.WriteTo(buffer.AsSpan(GrpcProtocol.HeaderSize, size));
        if (!gzip)
        {
            GrpcProtocol.WriteHeader(buffer, compressed: false, size);
            length = GrpcProtocol.HeaderSize + size;
            return buffer;
        }
        var compressed = GrpcProtocol.Compress(buffer.AsSpan(GrpcProtocol.HeaderSize, size));
        ArrayPool<byte>.Shared.Return(buffer);
        var framed = ArrayPool<byte>.Shared.Rent(GrpcProtocol.HeaderSize + compressed.Length);
        GrpcProtocol.WriteHeader(framed, compressed: true, compressed.Length);
        compressed.CopyTo(framed.AsSpan(GrpcProtocol.HeaderSize));
        length = GrpcProtocol.HeaderSize + compressed.Length;
        return framed;
    }
}

/// <summary>The body of a unary or server-streaming request: one pre-framed message.</summary>
internal sealed class FramedMessageContent : HttpContent
{
    private byte[]? _buffer;
    private readonly int _length;

    public FramedMessageContent(byte[] rentedFrame, int length)
    {
        _buffer = rentedFrame;
        _length = length;
        Headers.TryAddWithoutValidation("content-type", GrpcProtocol.ContentType);
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, default);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        var buffer = _buffer ?? throw new InvalidOperationException("The request body was already sent.");
        await stream.WriteAsync(buffer.AsMemory(0, _length), cancellationToken).ConfigureAwait(false);
    }

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }

    protected override void Dispose(bool disposing)
    {
        var buffer = Interlocked.Exchange(ref _buffer, null);
        if (buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        base.Dispose(disposing);
    }
}

/// <summary>
/// The body of a client- or duplex-streaming request: hands the HTTP/2 request stream to the
/// call's writer and stays open until the writer completes (half-close) or the call ends.
/// </summary>
internal sealed class StreamingRequestContent : HttpContent
{
    private readonly TaskCompletionSource<Stream> _stream = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _complete = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public StreamingRequestContent()
    {
        Headers.TryAddWithoutValidation("content-type", GrpcProtocol.ContentType);
    }

    public Task<Stream> StreamTask => _stream.Task;

    /// <summary>Ends the request body (END_STREAM).</summary>
    public void Complete() => _complete.TrySetResult();

    /// <summary>The call ended: no more writes.</summary>
    public void Abort(Exception reason)
    {
        _stream.TrySetException(reason);
        _complete.TrySetResult();
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, default);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        _stream.TrySetResult(stream);
        return _complete.Task;
    }

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
