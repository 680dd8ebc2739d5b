namespace Scheduler.Master.Registry;

/// <summary>
/// Commits items in arrival order, one group at a time: the items that queue up while a group is
/// being committed form the next group (as many, from the head of the queue, as the
/// <c>fits</c> rule admits), so a burst of small commits costs a few large ones (one rewrite and
/// fsync of the file registry, one etcd transaction). One writer task runs while items wait and
/// none otherwise. Thread-safe. Used by the registry stores and by the master's
/// <see cref="Loop.RegistryWriter"/>.
/// </summary>
/// <typeparam name="T">What one commit carries.</typeparam>
public sealed class GroupCommitQueue<T>
{
    private readonly Func<IReadOnlyList<T>, Task> _commit;
    private readonly Func<IReadOnlyList<T>, T, bool> _fits;
    private readonly Func<Exception, bool> _splitOnFailure;
    private readonly Lock _gate = new();
    private readonly Queue<(T Item, TaskCompletionSource Done)> _queue = new();
    private Task _writer = Task.CompletedTask;
    private bool _writing;
    private Exception? _refusal;

    /// <param name="commit">Commits one group (in order, never two at once). Throwing fails every
    /// item of the group with that exception.</param>
    /// <param name="fits">Whether the next queued item may join the group being formed (null: always).</param>
    /// <param name="splitOnFailure">Whether a group that failed with this exception is committed
    /// again item by item, so that one bad item does not fail the others (null: never).</param>
    public GroupCommitQueue(Func<IReadOnlyList<T>, Task> commit, Func<IReadOnlyList<T>, T, bool>? fits = null,
        Func<Exception, bool>? splitOnFailure = null)
    {
        ArgumentNullException.ThrowIfNull(commit);
        _commit = commit;
        _fits = fits ?? ((_, _) => true);
        _splitOnFailure = splitOnFailure ?? (_ => false);
    }

    /// <summary>Groups committed so far; for tests and metrics.</summary>
    public long GroupsCommitted { get; private set; }

    /// <summary>Queues <paramref name="item"/>; the task completes once it is committed and faults
    /// when it was not (the commit's exception, or the refusal of a stopped queue).</summary>
    public Task Enqueue(T item)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (_refusal is not null)
            {
                done.SetException(_refusal);
                return done.Task;
            }
            _queue.Enqueue((item, done));
            if (!_writing)
            {
                _writing = true;
                _writer = Task.Run(WriteAsync, CancellationToken.None);
            }
        }
        return done.Task;
    }

    /// <summary>
    /// Refuses further items with <paramref name="refusal"/>. With <paramref name="drain"/> the queued
    /// items are still committed; without, they fail with <paramref name="refusal"/> (the group being
    /// committed finishes either way). Completes when the writer is idle. Later calls only wait.
    /// </summary>
    public Task StopAsync(Exception refusal, bool drain)
    {
        ArgumentNullException.ThrowIfNull(refusal);
        List<TaskCompletionSource> failed = [];
        Task writer;
        lock (_gate)
        {
            _refusal ??= refusal;
            if (!drain)
            {
                while (_queue.TryDequeue(out var queued))
                {
                    failed.Add(queued.Done);
                }
            }
            writer = _writer;
        }
        foreach (var done in failed)
        {
            done.TrySetException(refusal);
        }
        return writer;
    }

    private async Task WriteAsync()
    {
        while (true)
        {
            var group = new List<T>();
            var done = new List<TaskCompletionSource>();
            lock (_gate)
            {
                if (_queue.Count == 0)
                {
                    _writing = false;
                    return;
                }
                do
                {
                    var (item, d) = _queue.Dequeue();
                    group.Add(item);
                    done.Add(d);
                }
                while (_queue.TryPeek(out var next) && _fits(group, next.Item));
            }
            var failure = await CommitAsync(group).ConfigureAwait(false);
            if (failure is not null && group.Count > 1 && _splitOnFailure(failure))
            {
                for (var i = 0; i < group.Count; i++)
                {
                    Complete(done[i], await CommitAsync([group[i]]).ConfigureAwait(false));
                }
                continue;
            }
            foreach (var d in done)
            {
                Complete(d, failure);
            }
        }
    }

    private async Task<Exception?> CommitAsync(IReadOnlyList<T> group)
    {
        try
        {
            await _commit(group).ConfigureAwait(false);
            lock (_gate)
            {
                GroupsCommitted++;
            }
            return null;
        }
#pragma warning disable CA1031 // The commit's failure belongs to the items' callers, whatever it is.
        catch (Exception e)
#pragma warning restore CA1031
        {
            return e;
        }
    }

    private static void Complete(TaskCompletionSource done, Exception? failure)
    {
        if (failure is null)
        {
            done.TrySetResult();
        }
        else
        {
            done.TrySetException(failure);
        }
    }
}
