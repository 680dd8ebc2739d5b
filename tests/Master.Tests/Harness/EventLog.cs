namespace Scheduler.Master.Tests.Harness;

/// <summary>Messages received on a stream, kept in order; tests take the first message matching a
/// predicate, waiting (with a timeout) until one arrives.</summary>
public sealed class EventLog<T>
{
    private readonly List<T> _items = [];
    private readonly HashSet<int> _taken = [];
    private readonly Lock _gate = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Exception? _ended;

    public IReadOnlyList<T> Snapshot()
    {
        lock (_gate)
        {
            return [.. _items];
        }
    }

    public void Add(T item)
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            _items.Add(item);
            changed = _changed;
            _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        changed.TrySetResult();
    }

    /// <summary>The stream ended (with the error, if any).</summary>
    public void End(Exception? error)
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            _ended = error ?? new EndOfStreamException("stream ended");
            changed = _changed;
        }
        changed.TrySetResult();
    }

    public Exception? Ended
    {
        get
        {
            lock (_gate)
            {
                return _ended;
            }
        }
    }

    /// <summary>Takes the first not-yet-taken item matching <paramref name="match"/>.</summary>
    public async Task<T> TakeAsync(Func<T, bool> match, TimeSpan? timeout = null, string? what = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                for (var i = 0; i < _items.Count; i++)
                {
                    if (!_taken.Contains(i) && match(_items[i]))
                    {
                        _taken.Add(i);
                        return _items[i];
                    }
                }
                if (_ended is not null)
                {
                    throw new InvalidOperationException($"stream ended before {what ?? "the expected message"} arrived: {_ended.Message}", _ended);
                }
                changed = _changed.Task;
            }
            try
            {
                await changed.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"timed out waiting for {what ?? "a matching message"}; received: {string.Join(" | ", Snapshot())}");
            }
        }
    }

    /// <summary>Asserts that no untaken item matches within <paramref name="window"/>.</summary>
    public async Task<bool> NoneWithinAsync(Func<T, bool> match, TimeSpan window)
    {
        try
        {
            await TakeAsync(match, window);
            return false;
        }
        catch (TimeoutException)
        {
            return true;
        }
        catch (InvalidOperationException)
        {
            return true;
        }
    }
}
