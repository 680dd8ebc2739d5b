using System.Globalization;
using Sched.V1;
using Scheduler.FrameworkSdk;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Samples.Batch;

/// <summary>
/// Runs a <see cref="BatchJob"/>: packs as many waiting tasks into each offer as fit, retries tasks
/// that were lost, dropped or failed (up to MaxAttempts), suppresses offers when nothing waits and
/// revives when a retry is queued. Completes <see cref="Completion"/> when every task finished or
/// gave up.
/// </summary>
public sealed class BatchScheduler : IScheduler
{
    private readonly BatchJob _job;
    private readonly Queue<int> _waiting = new();
    private readonly Dictionary<string, int> _live = new(StringComparer.Ordinal);
    private readonly HashSet<string> _running = new(StringComparer.Ordinal);
    private readonly int[] _attempts;
    private readonly TaskCompletionSource<BatchProgress> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _lock = new();
    private int _finished;
    private int _failed;
    private int _retries;
    private int _launched;
    private bool _suppressed;

    public BatchScheduler(BatchJob job)
    {
        ArgumentNullException.ThrowIfNull(job);
        _job = job;
        _attempts = new int[job.Count];
        for (var i = 0; i < job.Count; i++)
        {
            _waiting.Enqueue(i);
        }
        if (job.Count == 0)
        {
            _completion.TrySetResult(Progress);
        }
    }

    /// <summary>The last failure seen (task, state, reason, message), for reports.</summary>
    public string? LastFailure { get; private set; }

    /// <summary>Completes with the final progress when every task is done.</summary>
    public Task<BatchProgress> Completion => _completion.Task;

    public BatchProgress Progress
    {
        get
        {
            lock (_lock)
            {
                return new BatchProgress(_job.Count, _waiting.Count, _launched, _running.Count, _finished, _failed, _retries);
            }
        }
    }

    public async Task OnSubscribedAsync(SchedulerClient client, Event.Types.Subscribed subscribed, CancellationToken cancellationToken)
    {
        // After a reconnection, ask for the state of the tasks we believe are live.
        List<(string, string)> live;
        lock (_lock)
        {
            live = _live.Keys.Select(id => (id, "")).ToList();
        }
        if (live.Count > 0)
        {
            await client.ReconcileAsync(live, cancellationToken);
        }
    }

    public async Task OnOffersAsync(SchedulerClient client, IReadOnlyList<Offer> offers, CancellationToken cancellationToken)
    {
        foreach (var offer in offers)
        {
            var tasks = new List<TaskInfo>();
            var left = new OfferResources(offer);
            lock (_lock)
            {
                while (_waiting.Count > 0)
                {
                    var index = _waiting.Peek();
                    var builder = new TaskBuilder($"{_job.Name}-{index}-{_attempts[index] + 1}")
                        .Shell(_job.Command.Replace("{i}", index.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal))
                        .Cpus(_job.Cpus).Mem(_job.Mem).Label("batch.index", index.ToString(CultureInfo.InvariantCulture));
                    if (!left.TryCarve(builder, out var task))
                    {
                        break;
                    }
                    _waiting.Dequeue();
                    _attempts[index]++;
                    _live[task.TaskId] = index;
                    _launched++;
                    tasks.Add(task);
                }
            }
            if (tasks.Count > 0)
            {
                await client.LaunchAsync(offer, tasks, refuseSeconds: 1, cancellationToken);
            }
            else
            {
                await client.DeclineAsync([offer.Id], refuseSeconds: 5, cancellationToken);
            }
        }
        await SuppressIfIdleAsync(client, cancellationToken);
    }

    public async Task OnUpdateAsync(SchedulerClient client, TaskStatus status, CancellationToken cancellationToken)
    {
        var revive = false;
        lock (_lock)
        {
            if (!_live.TryGetValue(status.TaskId, out var index))
            {
                return; // an old duplicate, or a task of an earlier attempt
            }
            if (status.State == TaskState.TaskRunning)
            {
                _running.Add(status.TaskId);
            }
            if (!status.State.IsTerminal())
            {
                return;
            }
            _live.Remove(status.TaskId);
            _running.Remove(status.TaskId);
            if (status.State == TaskState.TaskFinished)
            {
                _finished++;
            }
            else
            {
                LastFailure = $"{status.TaskId}: {status.State.ShortName()} ({status.Reason}) {status.Message}".TrimEnd();
                if (status.State != TaskState.TaskError && _attempts[index] < _job.MaxAttempts)
                {
                    _retries++;
                    _waiting.Enqueue(index);
                    revive = true;
                }
                else
                {
                    _failed++;
                }
            }
            if (_finished + _failed == _job.Count)
            {
                _completion.TrySetResult(new BatchProgress(_job.Count, 0, _launched, 0, _finished, _failed, _retries));
            }
        }
        if (revive && _suppressed)
        {
            _suppressed = false;
            await client.ReviveAsync(cancellationToken: cancellationToken);
        }
    }

    public Task OnDisconnectedAsync(SchedulerClient client, string reason, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task OnErrorAsync(SchedulerClient client, string message, CancellationToken cancellationToken)
    {
        _completion.TrySetException(new InvalidOperationException("batch framework removed: " + message));
        return Task.CompletedTask;
    }

    private async Task SuppressIfIdleAsync(SchedulerClient client, CancellationToken cancellationToken)
    {
        bool idle;
        lock (_lock)
        {
            idle = _waiting.Count == 0;
        }
        if (idle && !_suppressed)
        {
            _suppressed = true;
            await client.SuppressAsync(cancellationToken: cancellationToken);
        }
    }
}
