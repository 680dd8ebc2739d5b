using System.Threading.Tasks.Sources;
using Grpc.Core;

namespace Scheduler.Master.State;

/// <summary>
/// The outgoing side of one open stream (a framework subscription, an agent link, an operator
/// subscription). The master loop writes without waiting; the RPC handler drains it to the wire.
/// Closing it with an <see cref="RpcException"/> ends the call with that status.
/// </summary>
/// <remarks>
/// A master holds one per connected agent, idle most of the time, so an idle outbox must cost
/// little: a queue allocated on first send and dropped again once drained, and
/// one reusable waiter (no allocation per wait). Only one drain runs at a time. Continuations run
/// on the thread pool, never on the sender's thread: the master loop must not write to sockets.
/// </remarks>
public sealed class Outbox<T> : IValueTaskSource<bool>
{
    private const int MaxUnflushed = 256;
    private const int InitialCapacity = 4;
    private static readonly WriteOptions BufferHint = new(WriteFlags.BufferHint);

    private readonly Lock _sync = new();
    private ManualResetValueTaskSourceCore<bool> _waiter = new() { RunContinuationsAsynchronously = true };
    private Queue<T>? _items;
    private bool _waiting;
    private RpcException? _error;

    public bool IsClosed { get; private set; }

    /// <summary>Number of queued messages.</summary>
    public int Count
    {
        get
        {
            lock (_sync)
            {
                return _items?.Count ?? 0;
            }
        }
    }

    /// <summary>Queues a message; false when the stream is already closed.</summary>
    public bool Send(T message)
    {
        lock (_sync)
        {
            if (IsClosed)
            {
                return false;
            }
            (_items ??= new Queue<T>(InitialCapacity)).Enqueue(message);
            if (!_waiting)
            {
                return true;
            }
            _waiting = false;
        }
        _waiter.SetResult(true);
        return true;
    }

    /// <summary>Ends the stream: normally (null) or with the status of <paramref name="error"/>.
    /// Messages already queued are still delivered.</summary>
    public void Close(RpcException? error = null)
    {
        lock (_sync)
        {
            if (IsClosed)
            {
                return;
            }
            IsClosed = true;
            _error = error;
            if (!_waiting)
            {
                return;
            }
            _waiting = false;
        }
        _waiter.SetResult(false);
    }

    /// <summary>The oldest queued message without removing it.</summary>
    public bool TryPeek(out T message)
    {
        lock (_sync)
        {
            if (_items is null)
            {
                message = default!;
                return false;
            }
            message = _items.Peek();
            return true;
        }
    }

    /// <summary>Removes the oldest queued message.</summary>
    public bool TryRead(out T message) => TryDequeue(out message, out _);

    /// <summary>Writes queued messages to <paramref name="writer"/> until the outbox closes; rethrows
    /// the closing <see cref="RpcException"/>. One drain at a time.</summary>
    public async Task DrainToAsync(IAsyncStreamWriter<T> writer, CancellationToken cancellationToken)
    {
        // Several queued messages leave with one flush (bounded, so a long burst still goes
        // out in pieces): a framework receiving 100,000 updates a second, or an agent its launches
        // and pings, costs a frame and a system call per burst, not per message. BufferHint asks
        // the server to queue a write without flushing it; a write without it flushes the lot.
        // One registration for the whole drain (not one per wait): a long-lived idle stream keeps
        // a single callback on the token.
        using var registration = cancellationToken.UnsafeRegister(static s => ((Outbox<T>)s!).CancelWait(), this);
        while (await WaitAsync(cancellationToken).ConfigureAwait(false))
        {
            var unflushed = 0;
            while (TryDequeue(out var message, out var more))
            {
                var buffer = unflushed < MaxUnflushed && more;
                writer.WriteOptions = buffer ? BufferHint : null;
                await writer.WriteAsync(message, cancellationToken).ConfigureAwait(false);
                unflushed = buffer ? unflushed + 1 : 0;
            }
        }
        if (Volatile.Read(ref _error) is { } error)
        {
            // A fresh exception per drain: the closing one is shared by every reader of _error.
            throw new RpcException(error.Status, error.Trailers);
        }
    }

    /// <summary>True when a message is queued (at once if one is), false once closed and empty;
    /// throws <see cref="OperationCanceledException"/> when cancelled.</summary>
    private ValueTask<bool> WaitAsync(CancellationToken cancellationToken)
    {
        lock (_sync)
        {
            if (_items is not null)
            {
                return new ValueTask<bool>(true);
            }
            if (IsClosed)
            {
                return new ValueTask<bool>(false);
            }
            if (cancellationToken.IsCancellationRequested)
            {
                return ValueTask.FromCanceled<bool>(cancellationToken);
            }
            _waiter.Reset();
            _waiting = true;
            return new ValueTask<bool>(this, _waiter.Version);
        }
    }

    private void CancelWait()
    {
        lock (_sync)
        {
            if (!_waiting)
            {
                return;
            }
            _waiting = false;
        }
        _waiter.SetException(new OperationCanceledException("The stream was cancelled."));
    }

    private bool TryDequeue(out T message, out bool more)
    {
        lock (_sync)
        {
            if (_items is null)
            {
                message = default!;
                more = false;
                return false;
            }
            message = _items.Dequeue();
            more = _items.Count > 0;
            if (!more)
            {
                // Drained: give the queue back rather than keep it for the stream's life (an agent's
                // outbox is empty nearly all the time; a new queue per burst is cheap garbage).
                _items = null;
            }
            return true;
        }
    }

    bool IValueTaskSource<bool>.GetResult(short token) => _waiter.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _waiter.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _waiter.OnCompleted(continuation, state, token, flags);
}
