using System.Diagnostics.Metrics;
using Sched.V1;

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
        _meter.CreateObservableGauge("sched.master.tasks", ObserveTasks, "{task}", "Live tasks by state");
    }

    /// <summary>Sets the source of gauge readings (a snapshot kept by the master loop).</summary>
    public void SetGaugeSource(Func<MasterGauges>? source) => _gauges = source;

    public void OffersSent(int count) => _offers.Add(count);

    public void OfferRescinded() => _rescinds.Add(1);

    public void TasksLaunched(int count) => _launches.Add(count);

    public void TaskInvalid(TaskState state) => _invalidTasks.Add(1, new KeyValuePair<string, object?>("state", state.ToString()));

    public void StatusUpdate(TaskState state) => _statusUpdates.Add(1, new KeyValuePair<string, object?>("state", state.ToString()));

    public void AllocationCycle(TimeSpan duration) => _cycleSeconds.Record(duration.TotalSeconds);

    public void Dispose() => _meter.Dispose();

    private IEnumerable<Measurement<int>> Gauge(Func<MasterGauges, int> select)
    {
        var g = _gauges?.Invoke();
        return g is null ? [] : [new Measurement<int>(select(g))];
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
public sealed record MasterGauges(int Agents, int Frameworks, IReadOnlyDictionary<TaskState, int> TasksByState);
