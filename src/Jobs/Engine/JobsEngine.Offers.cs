using System.Globalization;
using Sched.V1;
using Scheduler.FrameworkSdk;
using Scheduler.Jobs.Spec;
using Scheduler.Jobs.State;

namespace Scheduler.Jobs.Engine;

/// <summary>Placement rounds: pending instances onto offers, under parallelism, constraints and
/// gangs; each instance left pending gets the reason.</summary>
public sealed partial class JobsEngine
{
    /// <summary>
    /// Places what it can on <paramref name="offers"/>. The task ids are saved before this
    /// returns; the caller launches <see cref="EngineActions.Launches"/>, keeps
    /// <see cref="EngineActions.Hold"/> for the next round and declines the rest.
    /// </summary>
    public EngineActions Place(IReadOnlyList<Offer> offers)
    {
        ArgumentNullException.ThrowIfNull(offers);
        var actions = new EngineActions();
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            foreach (var offer in offers)
            {
                _agents[offer.AgentId] = Placement.AttributesOf(offer);
            }
            var pools = offers.ToDictionary(o => o.Id, o => new OfferResources(o), StringComparer.Ordinal);
            var placedAny = false;
            foreach (var job in _state.Jobs.Values.Where(j => !j.Stopped).OrderBy(j => j.Name, StringComparer.Ordinal))
            {
                var spec = _specs[job.Name];
                var pending = job.Instances.Where(i => i.State == InstanceStates.Pending).ToList();
                if (pending.Count == 0)
                {
                    continue;
                }
                var eligible = offers.Where(o => o.Role == spec.Role || o.Role.Length == 0).ToList();
                if (spec.Gang && spec.Type != JobType.Service)
                {
                    placedAny |= PlaceGang(job, spec, pending, eligible, pools, now, actions);
                    continue;
                }
                foreach (var i in pending)
                {
                    if (!MayStart(job, spec, i))
                    {
                        i.PendingReason = $"waiting: parallelism {spec.Parallelism} reached";
                        continue;
                    }
                    if (TryPlace(job, spec, i, eligible, pools, now, actions) is { } reason)
                    {
                        i.PendingReason = reason;
                    }
                    else
                    {
                        placedAny = true;
                    }
                }
            }
            ExplainByQuota();
            if (placedAny || offers.Count > 0)
            {
                _store.Save(_state);
            }
            WantedRoles(actions);
        }
        return actions;
    }

    private static bool MayStart(JobRecord job, JobSpec spec, InstanceRecord i)
    {
        if (spec.Type == JobType.Service || spec.Parallelism <= 0)
        {
            return true;
        }
        var running = job.Instances.Count(x => x.RunId == i.RunId && InstanceStates.HasTask(x.State));
        return running < spec.Parallelism;
    }

    /// <summary>Places one instance on the first offer that fits; null when placed, else why not.</summary>
    private string? TryPlace(JobRecord job, JobSpec spec, InstanceRecord i, List<Offer> offers, Dictionary<string, OfferResources> pools, DateTimeOffset now, EngineActions actions)
    {
        if (offers.Count == 0)
        {
            return $"no offers for role {spec.Role}: the cluster is full or the role is at its quota limit ('schedctl roles' shows its share)";
        }
        string? constraintReason = null;
        var placed = job.Instances.Where(x => x != i && InstanceStates.HasTask(x.State)).ToList();
        foreach (var offer in offers)
        {
            if (Placement.Refusal(spec, placed, _agents[offer.AgentId]) is { } refusal)
            {
                constraintReason ??= refusal;
                continue;
            }
            var taskId = $"{i.Id}.{_state.NextTaskNumber.ToString(CultureInfo.InvariantCulture)}";
            if (pools[offer.Id].TryCarve(TaskFactory.Builder(spec, i, taskId), out var task))
            {
                _state.NextTaskNumber++;
                Commit(i, offer, task, now, actions);
                return null;
            }
        }
        if (constraintReason is not null)
        {
            var wanted = job.Instances.Count(x => x.RunId == i.RunId && x.State is not (InstanceStates.Finished or InstanceStates.Idle or InstanceStates.Stopped));
            return Placement.SpreadShortfall(spec, _agents.Values, wanted) ?? $"no offered agent satisfies the constraints ({constraintReason})";
        }
        var largest = offers.Select(o => pools[o.Id]).OrderByDescending(p => p.Cpus).First();
        return $"no offer fits cpus {Num(spec.Task.Cpus)}, mem {Num(spec.Task.Mem)} MiB{(spec.Task.Disk > 0 ? $", disk {Num(spec.Task.Disk)} MiB" : "")}" +
            $"{(spec.Task.Ports > 0 ? $", {spec.Task.Ports} ports" : "")}; the largest offer has cpus {Num(largest.Cpus)}, mem {Num(largest.Mem)} MiB (agent {largest.Offer.Hostname})";
    }

    /// <summary>All pending tasks of a gang on these offers, or none; the shortfall named.</summary>
    private bool PlaceGang(JobRecord job, JobSpec spec, List<InstanceRecord> pending, List<Offer> offers, Dictionary<string, OfferResources> pools, DateTimeOffset now, EngineActions actions)
    {
        var byRun = pending.GroupBy(i => i.RunId);
        var placedAny = false;
        foreach (var gang in byRun)
        {
            // A trial on copies of what is left of each offer.
            var trial = offers.ToDictionary(o => o.Id, o => new OfferResources(new Offer(o) { Resources = { } }.WithResources(pools[o.Id].Remaining)), StringComparer.Ordinal);
            var placed = job.Instances.Where(x => x.RunId == gang.Key && InstanceStates.HasTask(x.State)).ToList();
            var fits = new List<(InstanceRecord Instance, Offer Offer)>();
            foreach (var i in gang)
            {
                foreach (var offer in offers)
                {
                    if (Placement.Refusal(spec, placed, _agents[offer.AgentId]) is null
                        && trial[offer.Id].TryCarve(TaskFactory.Builder(spec, i, "trial"), out _))
                    {
                        fits.Add((i, offer));
                        placed.Add(new InstanceRecord { Attributes = new Dictionary<string, string>(_agents[offer.AgentId]) });
                        break;
                    }
                }
            }
            var count = gang.Count();
            if (fits.Count < count)
            {
                var reason = $"gang of {count} tasks (each cpus {Num(spec.Task.Cpus)}, mem {Num(spec.Task.Mem)} MiB): the offers fit {fits.Count}, {count - fits.Count} more need room; none starts until all fit";
                foreach (var i in gang)
                {
                    i.PendingReason = reason;
                }
                foreach (var offer in offers)
                {
                    actions.Hold.Add(offer.Id);
                }
                continue;
            }
            foreach (var (i, offer) in fits)
            {
                var taskId = NextTaskId(i);
                pools[offer.Id].TryCarve(TaskFactory.Builder(spec, i, taskId), out var task);
                Commit(i, offer, task, now, actions);
            }
            AddEvent(job, $"gang of {count} tasks placed together");
            placedAny = true;
        }
        return placedAny;
    }

    private static void Commit(InstanceRecord i, Offer offer, TaskInfo task, DateTimeOffset now, EngineActions actions)
    {
        TaskFactory.AddPlacementEnv(task, offer);
        i.TaskId = task.TaskId;
        i.State = InstanceStates.Staging;
        i.AgentId = offer.AgentId;
        i.Hostname = offer.Hostname;
        i.Attributes = Placement.AttributesOf(offer);
        i.LaunchedAt = now;
        i.Healthy = null;
        i.PendingReason = null;
        i.Endpoint = task.Command.Env.Where(e => e.Key.StartsWith("PORT", StringComparison.Ordinal)).ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal);
        if (!actions.Launches.TryGetValue(offer.Id, out var list))
        {
            actions.Launches[offer.Id] = list = [];
        }
        list.Add(task);
    }

    private static string Num(double d) => d.ToString("0.###", CultureInfo.InvariantCulture);
}

internal static class OfferCopy
{
    public static Offer WithResources(this Offer offer, IEnumerable<Resource> resources)
    {
        offer.Resources.Clear();
        offer.Resources.Add(resources);
        return offer;
    }
}
