using Scheduler.Resilience;
using Sched.V1;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.FrameworkSdk;

/// <summary>
/// Keeps the latest known state of a framework's tasks and drives reconciliation the way the
/// master expects it: after each (re)subscription, ask explicitly for every task not known to be
/// terminal; tasks that get no answer are asked for again on the next round (with growing
/// spacing), and an implicit round at the end catches tasks the framework forgot.
/// </summary>
/// <remarks>
/// Feed it every update (<see cref="Observe"/>) and every launched task (<see cref="Track"/>).
/// <see cref="ReconcileAsync"/> only sends requests and never waits for answers, so it is safe to
/// call from a scheduler callback. Thread-safe.
/// </remarks>
public sealed class TaskReconciler
{
    private readonly Dictionary<string, Entry> _tasks = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly Backoff _backoff;
    private int _round;
    private DateTimeOffset _nextRound = DateTimeOffset.MinValue;

    /// <summary>Creates a reconciler.</summary>
    /// <param name="timeProvider">The clock (default: system).</param>
    /// <param name="backoff">Spacing between explicit rounds (default 0.5 s doubling to 10 s).</param>
    public TaskReconciler(TimeProvider? timeProvider = null, Backoff? backoff = null)
    {
        _time = timeProvider ?? TimeProvider.System;
        _backoff = backoff ?? Backoff.Default;
    }

    /// <summary>The tasks not known to be terminal.</summary>
    public IReadOnlyList<string> ActiveTaskIds
    {
        get
        {
            lock (_lock)
            {
                return _tasks.Where(kv => !kv.Value.State.IsTerminal()).Select(kv => kv.Key).ToList();
            }
        }
    }

    /// <summary>Tasks asked about in the current round that have not answered yet.</summary>
    public IReadOnlyList<string> Unanswered
    {
        get
        {
            lock (_lock)
            {
                return _tasks.Where(kv => kv.Value.Pending).Select(kv => kv.Key).ToList();
            }
        }
    }

    /// <summary>The latest state of <paramref name="taskId"/>, or null if unknown.</summary>
    /// <param name="taskId">The task.</param>
    public TaskState? StateOf(string taskId)
    {
        lock (_lock)
        {
            return _tasks.TryGetValue(taskId, out var e) ? e.State : null;
        }
    }

    /// <summary>Records a launched task (state STAGING).</summary>
    /// <param name="task">The launched task.</param>
    public void Track(TaskInfo task)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (_lock)
        {
            _tasks[task.TaskId] = new Entry(task.AgentId, TaskState.TaskStaging, Pending: false);
        }
    }

    /// <summary>Records an update: the task's latest state, and the answer to reconciliation.</summary>
    /// <param name="status">A status update.</param>
    public void Observe(TaskStatus status)
    {
        ArgumentNullException.ThrowIfNull(status);
        lock (_lock)
        {
            if (status.State is TaskState.TaskUnknown)
            {
                // The master does not know it: it is gone for good.
                _tasks[status.TaskId] = new Entry(status.AgentId, TaskState.TaskGone, Pending: false);
                return;
            }
            _tasks[status.TaskId] = new Entry(string.IsNullOrEmpty(status.AgentId) ? _tasks.GetValueOrDefault(status.TaskId)?.AgentId ?? "" : status.AgentId, status.State, Pending: false);
        }
    }

    /// <summary>Starts over after a (re)subscription: every active task will be asked about.</summary>
    public void Restart()
    {
        lock (_lock)
        {
            _round = 0;
            _nextRound = DateTimeOffset.MinValue;
            foreach (var key in _tasks.Keys.ToList())
            {
                _tasks[key] = _tasks[key] with { Pending = false };
            }
        }
    }

    /// <summary>
    /// Sends the next reconciliation round if it is due: explicit for the active tasks that have
    /// not answered, or implicit once all have. Returns how many tasks were asked about
    /// explicitly (0 for an implicit round or when no round was due).
    /// </summary>
    /// <param name="client">The connection.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public async Task<int> ReconcileAsync(SchedulerClient client, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        List<(string TaskId, string AgentId)> ask;
        var implicitRound = false;
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            if (now < _nextRound)
            {
                return 0;
            }
            var first = _round == 0;
            ask = _tasks.Where(kv => !kv.Value.State.IsTerminal() && (first || kv.Value.Pending))
                .Select(kv => (kv.Key, kv.Value.AgentId)).ToList();
            if (ask.Count == 0)
            {
                implicitRound = true;
            }
            foreach (var (taskId, _) in ask)
            {
                _tasks[taskId] = _tasks[taskId] with { Pending = true };
            }
            _nextRound = now + _backoff.Delay(_round++, Random.Shared);
        }
        if (implicitRound)
        {
            await client.ReconcileAsync(null, cancellationToken).ConfigureAwait(false);
            return 0;
        }
        await client.ReconcileAsync(ask, cancellationToken).ConfigureAwait(false);
        return ask.Count;
    }

    private sealed record Entry(string AgentId, TaskState State, bool Pending);
}
