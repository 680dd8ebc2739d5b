using System.Globalization;
using Sched.V1;
using Scheduler.FrameworkSdk;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Samples.Service;

/// <summary>
/// Keeps <see cref="ServiceSpec.Instances"/> instances running: one slot per instance, at most
/// one new instance per offer (so instances spread over agents), a replacement launched whenever
/// an instance ends for any reason, offers suppressed while every slot is filled.
/// </summary>
public sealed class ServiceScheduler : IScheduler
{
    private readonly ServiceSpec _spec;
    private readonly Slot[] _slots;
    private readonly Lock _lock = new();
    private int _restarts;
    private int _generation;
    private bool _suppressed;

    public ServiceScheduler(ServiceSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        _spec = spec;
        _slots = Enumerable.Range(0, spec.Instances).Select(_ => new Slot()).ToArray();
    }

    public ServiceProgress Progress
    {
        get
        {
            lock (_lock)
            {
                var running = _slots.Count(s => s.State == TaskState.TaskRunning);
                var starting = _slots.Count(s => s.TaskId is not null && s.State != TaskState.TaskRunning);
                return new ServiceProgress(_spec.Instances, running, starting, _restarts);
            }
        }
    }

    /// <summary>The running instances' task ids.</summary>
    public IReadOnlyList<string> RunningTasks
    {
        get
        {
            lock (_lock)
            {
                return _slots.Where(s => s.State == TaskState.TaskRunning).Select(s => s.TaskId!).ToList();
            }
        }
    }

    /// <summary>Stops one running instance (as an operator would); a replacement follows.</summary>
    public async Task<string?> KillOneAsync(SchedulerClient client, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        var running = RunningTasks;
        var victim = running.Count > 0 ? running[0] : null;
        if (victim is not null)
        {
            await client.KillAsync(victim, cancellationToken: cancellationToken);
        }
        return victim;
    }

    public async Task OnSubscribedAsync(SchedulerClient client, Event.Types.Subscribed subscribed, CancellationToken cancellationToken)
    {
        List<(string, string)> live;
        lock (_lock)
        {
            live = _slots.Where(s => s.TaskId is not null).Select(s => (s.TaskId!, s.AgentId)).ToList();
        }
        if (live.Count > 0)
        {
            await client.ReconcileAsync(live, cancellationToken);
        }
    }

    public async Task OnOffersAsync(SchedulerClient client, IReadOnlyList<Offer> offers, CancellationToken cancellationToken)
    {
        var decline = new List<string>();
        foreach (var offer in offers)
        {
            TaskInfo? task = null;
            lock (_lock)
            {
                var free = Array.FindIndex(_slots, s => s.TaskId is null);
                if (free >= 0)
                {
                    var id = $"{_spec.Name}-{free}-{++_generation}";
                    var builder = new TaskBuilder(id)
                        .Shell(_spec.Command.Replace("{i}", free.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal))
                        .Cpus(_spec.Cpus).Mem(_spec.Mem).KillGrace(_spec.KillGrace).Label("service.instance", free.ToString(CultureInfo.InvariantCulture));
                    if (new OfferResources(offer).TryCarve(builder, out var built))
                    {
                        task = built;
                        _slots[free] = new Slot { TaskId = id, AgentId = offer.AgentId, State = TaskState.TaskStaging };
                    }
                }
            }
            if (task is null)
            {
                decline.Add(offer.Id);
            }
            else
            {
                await client.LaunchAsync(offer, [task], refuseSeconds: 5, cancellationToken);
            }
        }
        if (decline.Count > 0)
        {
            await client.DeclineAsync(decline, refuseSeconds: 5, cancellationToken);
        }
        bool full;
        lock (_lock)
        {
            full = _slots.All(s => s.TaskId is not null);
        }
        if (full && !_suppressed)
        {
            _suppressed = true;
            await client.SuppressAsync(cancellationToken: cancellationToken);
        }
    }

    public async Task OnUpdateAsync(SchedulerClient client, TaskStatus status, CancellationToken cancellationToken)
    {
        var replace = false;
        lock (_lock)
        {
            var slot = Array.FindIndex(_slots, s => s.TaskId == status.TaskId);
            if (slot < 0)
            {
                return;
            }
            if (status.State.IsTerminal())
            {
                _slots[slot] = new Slot();
                _restarts++;
                replace = true;
            }
            else
            {
                _slots[slot] = _slots[slot] with { State = status.State };
            }
        }
        if (replace)
        {
            _suppressed = false;
            await client.ReviveAsync(cancellationToken: cancellationToken);
        }
    }

    private sealed record Slot
    {
        public string? TaskId { get; init; }

        public string AgentId { get; init; } = "";

        public TaskState State { get; init; }
    }
}
