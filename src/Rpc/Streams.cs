using System.Runtime.CompilerServices;

namespace Scheduler.Rpc;

/// <summary>Reads messages of a stream one at a time.</summary>
public interface IAsyncStreamReader<out T>
{
    /// <summary>The message read by the last successful <see cref="MoveNext"/>.</summary>
    T Current { get; }

    /// <summary>Reads the next message; false at the end of the stream. Throws
    /// <see cref="RpcException"/> when the call failed.</summary>
    Task<bool> MoveNext(CancellationToken cancellationToken = default);
}

/// <summary>Writes messages to a stream. Concurrent writes are serialised by the stream (they
/// queue, never interleave); await each write before the next to keep their order and to see
/// its failure.</summary>
public interface IAsyncStreamWriter<in T>
{
    Task WriteAsync(T message, CancellationToken cancellationToken = default);
}

/// <summary>A stream writer that can queue a message without flushing it to the network. A
/// sender with several messages ready writes all but the last with <c>flush: false</c>: they leave
/// in as few HTTP/2 frames and system calls as fit, instead of one flush per message.</summary>
public interface IBufferedStreamWriter<in T> : IAsyncStreamWriter<T>
{
    /// <summary>Writes <paramref name="message"/>; sends it (and everything queued before it) only
    /// when <paramref name="flush"/> is true. Always end a burst with a flushing write.</summary>
    Task WriteAsync(T message, bool flush, CancellationToken cancellationToken = default);
}

/// <summary>The server's response stream.</summary>
public interface IServerStreamWriter<in T> : IAsyncStreamWriter<T>
{
}

/// <summary>The client's request stream; <see cref="CompleteAsync"/> half-closes it.</summary>
public interface IClientStreamWriter<in T> : IAsyncStreamWriter<T>
{
    Task CompleteAsync();
}

public static class AsyncStreamReaderExtensions
{
    /// <summary>Enumerates the remaining messages of the stream.</summary>
    public static async IAsyncEnumerable<T> ReadAllAsync<T>(this IAsyncStreamReader<T> reader, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reader);
        while (await reader.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            yield return reader.Current;
        }
    }
}
