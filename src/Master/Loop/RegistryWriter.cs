using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Scheduler.Master.Registry;
using Scheduler.Master.Telemetry;

namespace Scheduler.Master.Loop;

/// <summary>
/// Commits registry writes in order, off the master loop's hot path: the loop enqueues and moves
/// on; callers that must know the write is durable (quota, weights) await the returned task.
/// Unavailable stores are retried with backoff; a fenced write ends the leadership term.
/// </summary>
public sealed class RegistryWriter : IAsyncDisposable
{
    private readonly IRegistryStore _store;
    private readonly ILogger _logger;
    private readonly Action _onFenced;
    private readonly CancellationTokenSource _stop;
    private readonly Channel<(IReadOnlyList<RegistryWrite> Writes, TaskCompletionSource Done)> _queue =
        Channel.CreateUnbounded<(IReadOnlyList<RegistryWrite>, TaskCompletionSource)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _worker;

    /// <param name="lost">Cancelled when the leadership ends: pending writes are abandoned.</param>
    public RegistryWriter(IRegistryStore store, ILogger logger, Action onFenced, CancellationToken lost)
    {
        _store = store;
        _logger = logger;
        _onFenced = onFenced;
        _stop = CancellationTokenSource.CreateLinkedTokenSource(lost);
        _worker = Task.Run(RunAsync, CancellationToken.None);
    }

    /// <summary>Queues writes; the task completes once they are durable (faults when they never will be).</summary>
    public Task Enqueue(params RegistryWrite[] writes)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_queue.Writer.TryWrite((writes, done)))
        {
            done.SetException(new RegistryFencedException("the master stopped leading; the write was not made"));
        }
        return done.Task;
    }

    /// <summary>Flushes the queued writes (a graceful stop keeps them), giving up after a few
    /// seconds or when the leadership is lost.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        _stop.CancelAfter(TimeSpan.FromSeconds(5));
        await _worker;
        _stop.Dispose();
    }

    /// <summary>Most writes combined into one commit (etcd limits the operations of a transaction).</summary>
    private const int MaxBatchWrites = 64;

    private async Task RunAsync()
    {
        var batch = new List<(IReadOnlyList<RegistryWrite> Writes, TaskCompletionSource Done)>();
        while (await _queue.Reader.WaitToReadAsync(CancellationToken.None))
        {
            // Group commit: whatever queued while the previous commit ran goes in one commit
            // (one etcd transaction, one rewrite + fsync of the file registry). 10,000 agents
            // registering at once then cost a few hundred commits, not 10,000.
            batch.Clear();
            var count = 0;
            while (count < MaxBatchWrites && _queue.Reader.TryRead(out var item))
            {
                batch.Add(item);
                count += item.Writes.Count;
            }
            if (batch.Count == 0)
            {
                continue;
            }
            var writes = batch.Count == 1 ? batch[0].Writes : LastPerKey(batch.SelectMany(b => b.Writes));
            var outcome = await CommitAsync(writes);
            if (outcome is not null && batch.Count > 1 && outcome is not RegistryFencedException)
            {
                // One bad write must not fail the others: commit them one by one.
                foreach (var (one, done) in batch)
                {
                    Complete(done, await CommitAsync(one));
                }
                continue;
            }
            foreach (var (_, done) in batch)
            {
                Complete(done, outcome);
            }
        }
    }

    /// <summary>The writes in order, keeping only the last write of each key (a transaction may
    /// name a key once; the later write supersedes the earlier one anyway).</summary>
    private static List<RegistryWrite> LastPerKey(IEnumerable<RegistryWrite> writes)
    {
        var all = writes.ToList();
        var last = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < all.Count; i++)
        {
            last[all[i].Key] = i;
        }
        return [.. all.Where((w, i) => last[w.Key] == i)];
    }

    private static void Complete(TaskCompletionSource done, Exception? outcome)
    {
        if (outcome is null)
        {
            done.TrySetResult();
        }
        else
        {
            done.TrySetException(outcome);
        }
    }

    /// <summary>Commits with retries while the registry is unavailable; null on success, else
    /// why the writes were not made.</summary>
    private async Task<Exception?> CommitAsync(IReadOnlyList<RegistryWrite> writes)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            if (_stop.IsCancellationRequested)
            {
                return new RegistryFencedException("the master stopped leading; the write was not made");
            }
            try
            {
                await _store.CommitAsync(writes, _stop.Token);
                return null;
            }
            catch (RegistryUnavailableException e)
            {
                MasterLog.RegistryWriteFailed(_logger, "registry unavailable, retrying", e);
                try
                {
                    await Task.Delay(delay, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                }
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 5000));
            }
            catch (RegistryFencedException e)
            {
                MasterLog.RegistryWriteFailed(_logger, "fenced: another master leads", e);
                _queue.Writer.TryComplete();
                _onFenced();
                return e;
            }
            catch (Exception e)
            {
                MasterLog.RegistryWriteFailed(_logger, e.Message, e);
                return e;
            }
        }
    }
}
