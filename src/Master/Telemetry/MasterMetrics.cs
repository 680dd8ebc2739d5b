using System.Diagnostics.Metrics;
using Sched.V1;
using Scheduler.Allocation;

namespace Scheduler.Master.Telemetry;

/// <summary>The master's instruments on the meter <c>Scheduler.Master</c>.</summary>
public sealed class MasterMetrics : IDisposable
{
    public const string MeterName = "Scheduler.Master";

    private readonly Meter _meter;
    private readonly Counter<long> _offers;
    private readonly Counter<long> _rescinds;
    private readonly Counter<long> _launches;
    private readonly Counter<long> _statusUpdates;
    private readonly Counter<long> _invalidTasks;
    private readonly Histogram<double> _cycleSeconds;
    private readonly ObservableGauge<int> _tasksGauge;
    private readonly ObservableGauge<double> _roleGauge;
    private Func<MasterGauges>? _gauges;

    public MasterMetrics(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _offers = _meter.CreateCounter<long>("sched.master.offers", "{offer}", "Offers sent to frameworks");
        _rescinds = _meter.CreateCounter<long>("sched.master.offers.rescinded", "{offer}", "Offers rescinded (timeout, agent lost, framework gone)");
        _launches = _meter.CreateCounter<long>("sched.master.tasks.launched", "{task}", "Tasks forwarded to agents");
        _invalidTasks = _meter.CreateCounter<long>("sched.master.tasks.invalid", "{task}", "Tasks refused at Accept (TASK_ERROR / TASK_DROPPED)");
        _statusUpdates = _meter.CreateCounter<long>("sched.master.status_updates", "{update}", "Status updates received from agents");
        // Seconds, the base unit Prometheus expects; buckets from 50 µs to 2.5 s.
        _cycleSeconds = _meter.CreateHistogram<double>("sched.master.allocation.cycle.duration", "s", "Allocation cycle latency",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] });
        _meter.CreateObservableGauge("sched.master.agents", () => Gauge(g => g.Agents), "{agent}", "Registered agents");
        _meter.CreateObservableGauge("sched.master.frameworks", () => Gauge(g => g.Frameworks), "{framework}", "Known frameworks");
        _tasksGauge = _meter.CreateObservableGauge("sched.master.tasks", ObserveTasks, "{task}", "Live tasks by state");
        _meter.CreateObservableGauge("sched.master.role.allocated", () => RoleResources(r => r.Allocated), "{resource}", "Scalar resources allocated to a role's subtree, by resource (cpus, mem MiB, disk MiB, gpus)");
        _meter.CreateObservableGauge("sched.master.role.reserved", () => RoleResources(r => r.Reserved), "{resource}", "Scalar resources reserved for a role's subtree, by resource");
        _meter.CreateObservableGauge("sched.master.role.quota.guarantee", () => RoleResources(r => r.Quota?.Guarantees ?? []), "{resource}", "Quota guarantee of a role, by resource");
        _meter.CreateObservableGauge("sched.master.role.quota.limit", () => RoleResources(r => r.Quota?.Limits ?? []), "{resource}", "Quota limit of a role, by resource");
        _roleGauge = _meter.CreateObservableGauge("sched.master.role.dominant_share.ratio", () => RoleValues(r => r.DominantShare), "1", "Dominant share of a role (allocated / total, largest over resources, unweighted)");
        _meter.CreateObservableGauge("sched.master.role.weight", () => RoleValues(r => r.Weight), "{weight}", "Weight of a role");
        _meter.CreateObservableGauge("sched.master.allocator.filters", () => Gauge(g => g.Allocator?.ActiveFilters ?? 0), "{filter}", "Active decline filters (framework × agent)");
        _meter.CreateObservableCounter("sched.master.allocator.cycles", () => Gauge(g => (int)Math.Min(int.MaxValue, g.Allocator?.Cycles ?? 0)), "{cycle}", "Allocation cycles run by this master's current term");
    }

    /// <summary>
    /// Whether anything collects the gauges (a scrape endpoint or another listener): the loop
    /// counts tasks and snapshots the allocator for them only then.
    /// </summary>
    public bool GaugesObserved => _tasksGauge.Enabled || _roleGauge.Enabled;

    /// <summary>The meter these instruments live on (what a scrape endpoint serves).</summary>
    public Meter Meter => _meter;

    /// <summary>Sets the source of gauge readings (a snapshot kept by the master loop).</summary>
    public void SetGaugeSource(Func<MasterGauges>? source) => _gauges = source;

    public void OffersSent(int count) => _offers.Add(count);

    public void OfferRescinded() => _rescinds.Add(1);

    public void TasksLaunched(int count) => _launches.Add(count);

    public void TaskInvalid(TaskState state) => _invalidTasks.Add(1, StateTag(state));

    public void StatusUpdate(TaskState state) => _statusUpdates.Add(1, StateTag(state));

    // One tag per state, built once: a status update must not allocate a string to be counted.
    private static readonly KeyValuePair<string, object?>[] StateTags =
        [.. Enumerable.Range(0, Enum.GetValues<TaskState>().Max(s => (int)s) + 1).Select(i => new KeyValuePair<string, object?>("state", ((TaskState)i).ToString()))];

    private static KeyValuePair<string, object?> StateTag(TaskState state) =>
        (int)state >= 0 && (int)state < StateTags.Length ? StateTags[(int)state] : new KeyValuePair<string, object?>("state", state.ToString());

    public void AllocationCycle(TimeSpan duration) => _cycleSeconds.Record(duration.TotalSeconds);

    public void Dispose() => _meter.Dispose();

    private IEnumerable<Measurement<int>> Gauge(Func<MasterGauges, int> select)
    {
        var g = _gauges?.Invoke();
        return g is null ? [] : [new Measurement<int>(select(g))];
    }

    private IEnumerable<Measurement<double>> RoleResources(Func<RoleFigures, IEnumerable<Resource>> select)
    {
        if (_gauges?.Invoke().Allocator is not { } allocator)
        {
            yield break;
        }
        foreach (var role in allocator.Roles)
        {
            foreach (var r in select(role))
            {
                if (r.ValueCase == Resource.ValueOneofCase.Scalar)
                {
                    yield return new Measurement<double>(r.Scalar, new KeyValuePair<string, object?>("role", role.Role), new KeyValuePair<string, object?>("resource", r.Name));
                }
            }
        }
    }

    private IEnumerable<Measurement<double>> RoleValues(Func<RoleFigures, double> select)
    {
        if (_gauges?.Invoke().Allocator is not { } allocator)
        {
            yield break;
        }
        foreach (var role in allocator.Roles)
        {
            yield return new Measurement<double>(select(role), new KeyValuePair<string, object?>("role", role.Role));
        }
    }

    private IEnumerable<Measurement<int>> ObserveTasks()
    {
        var g = _gauges?.Invoke();
        if (g is null)
        {
            yield break;
        }
        foreach (var (state, count) in g.TasksByState)
        {
            yield return new Measurement<int>(count, new KeyValuePair<string, object?>("state", state.ToString()));
        }
    }
}

/// <summary>Gauge readings published by the master loop.</summary>
/// <param name="Allocator">The allocator's figures at the same moment (per-role allocation, quota, shares, filters).</param>
public sealed record MasterGauges(int Agents, int Frameworks, IReadOnlyDictionary<TaskState, int> TasksByState, AllocatorSnapshot? Allocator = null);
