using Microsoft.Extensions.Logging;
using Polly;
using Scheduler.Master.Registry;
using Scheduler.Master.Telemetry;
using Scheduler.Resilience;

namespace Scheduler.Master.Loop;

/// <summary>
/// Commits registry writes in order, off the master loop's hot path: the loop enqueues and moves
/// on; callers that must know the write is durable (quota, weights) await the returned task.
/// Unavailable stores are retried with backoff; a fenced write ends the leadership term.
/// </summary>
public sealed class RegistryWriter : IAsyncDisposable
{
    /// <summary>Most writes combined into one commit (etcd limits the operations of a transaction).</summary>
    private const int MaxBatchWrites = 64;

    /// <summary>The wait between commits while the registry is unavailable: 100 ms doubling to 5 s.</summary>
    private static readonly Backoff Unavailable = new(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(5)) { Jitter = 0 };

    private readonly IRegistryStore _store;
    private readonly ILogger _logger;
    private readonly Action _onFenced;
    private readonly CancellationTokenSource _stop;
    private readonly GroupCommitQueue<IReadOnlyList<RegistryWrite>> _queue;
    private readonly ResiliencePipeline _retry;

    /// <param name="lost">Cancelled when the leadership ends: pending writes are abandoned.</param>
    public RegistryWriter(IRegistryStore store, ILogger logger, Action onFenced, CancellationToken lost)
    {
        _store = store;
        _logger = logger;
        _onFenced = onFenced;
        _stop = CancellationTokenSource.CreateLinkedTokenSource(lost);
        // Group commit: whatever queued while the previous commit ran goes in one commit (one etcd
        // transaction, one rewrite + fsync of the file registry). 10,000 agents registering at once
        // then cost a few hundred commits, not 10,000. One bad write must not fail the others: a
        // group that fails for another reason than fencing is committed again write by write.
        _queue = new GroupCommitQueue<IReadOnlyList<RegistryWrite>>(CommitGroupAsync,
            fits: (group, _) => group.Sum(w => w.Count) < MaxBatchWrites,
            splitOnFailure: e => e is not RegistryFencedException);
        _retry = Unavailable.Pipeline(e => e is RegistryUnavailableException, TimeProvider.System, Random.Shared,
            e =>
            {
                MasterLog.RegistryWriteFailed(_logger, "registry unavailable, retrying", e);
                return ValueTask.CompletedTask;
            });
    }

    /// <summary>Queues writes; the task completes once they are durable (faults when they never will be).</summary>
    public Task Enqueue(params RegistryWrite[] writes) => _queue.Enqueue(writes);

    /// <summary>Flushes the queued writes (a graceful stop keeps them), giving up after a few
    /// seconds or when the leadership is lost.</summary>
    public async ValueTask DisposeAsync()
    {
        var drained = _queue.StopAsync(NotLeading(), drain: true);
        _stop.CancelAfter(TimeSpan.FromSeconds(5));
        await drained;
        _stop.Dispose();
    }

    private static RegistryFencedException NotLeading() => new("the master stopped leading; the write was not made");

    private Task CommitGroupAsync(IReadOnlyList<IReadOnlyList<RegistryWrite>> group)
        => CommitAsync(group.Count == 1 ? group[0] : LastPerKey(group.SelectMany(w => w)));

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

    /// <summary>Commits, retrying while the registry is unavailable; throws why the writes were
    /// not made.</summary>
    private async Task CommitAsync(IReadOnlyList<RegistryWrite> writes)
    {
        try
        {
            await _retry.ExecuteAsync(async ct => await _store.CommitAsync(writes, ct).ConfigureAwait(false), _stop.Token).ConfigureAwait(false);
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
            throw NotLeading();
        }
        catch (RegistryFencedException e)
        {
            MasterLog.RegistryWriteFailed(_logger, "fenced: another master leads", e);
            _ = _queue.StopAsync(NotLeading(), drain: true);
            _onFenced();
            throw;
        }
        catch (Exception e)
        {
            MasterLog.RegistryWriteFailed(_logger, e.Message, e);
            throw;
        }
    }
}
