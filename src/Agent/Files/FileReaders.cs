using System.Collections.Concurrent;
using Grpc.Core;

namespace Scheduler.Agent.Files;

/// <summary>
/// The threads that do file serving's blocking system calls (open, stat, read, directory
/// listing), apart from the thread pool. A read the kernel holds up — a FIFO in a sandbox once
/// did, a stuck mount still could — then holds one of these threads, never a pool thread: the
/// agent's link to the master, its gRPC server and its task supervision run on the pool and keep
/// running however many file calls hang. Calls beyond the threads wait in a bounded queue without
/// holding any thread; one that finds the queue full is answered RESOURCE_EXHAUSTED.
/// </summary>
public sealed class FileReaders : IDisposable
{
    private readonly BlockingCollection<Action> _work;
    private readonly Thread[] _threads;

    /// <param name="threads">Threads reading (at least 1).</param>
    /// <param name="queue">Calls that may wait for a thread (at least 1).</param>
    public FileReaders(int threads = 4, int queue = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(queue, 1);
        Threads = threads;
        _work = new BlockingCollection<Action>(queue);
        _threads = new Thread[threads];
        for (var i = 0; i < threads; i++)
        {
            _threads[i] = new Thread(Serve) { IsBackground = true, Name = $"sched-file-reader-{i}" };
            _threads[i].Start();
        }
    }

    /// <summary>How many threads read.</summary>
    public int Threads { get; }

    /// <summary>Calls waiting for a reader now.</summary>
    public int Waiting => _work.Count;

    /// <summary>Runs <paramref name="read"/> on a reader thread. The returned task ends with its
    /// result or exception, or cancelled as soon as <paramref name="cancellationToken"/> fires (the
    /// read itself, if it has started, ends when the kernel lets it). Throws RESOURCE_EXHAUSTED
    /// when the queue is full.</summary>
    public Task<T> RunAsync<T>(Func<T> read, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(read);
        cancellationToken.ThrowIfCancellationRequested();
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        bool queued;
        try
        {
            queued = _work.TryAdd(() =>
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    done.TrySetCanceled(cancellationToken);
                    return;
                }
                try
                {
                    done.TrySetResult(read());
                }
                catch (Exception e)
                {
                    done.TrySetException(e);
                }
            });
        }
        catch (InvalidOperationException)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "the agent is stopping; try again once it is back"));
        }
        if (!queued)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted,
                $"the agent has {_work.BoundedCapacity} file requests waiting for its {Threads} file readers; try again shortly (a task's file may be holding reads up)"));
        }
        return done.Task.WaitAsync(cancellationToken);
    }

    private void Serve()
    {
        try
        {
            foreach (var work in _work.GetConsumingEnumerable())
            {
                work();
            }
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Takes no more work; threads end once the work queued is done (a thread held by the
    /// kernel ends when its call returns; they are background threads).</summary>
    public void Dispose() => _work.CompleteAdding();
}
