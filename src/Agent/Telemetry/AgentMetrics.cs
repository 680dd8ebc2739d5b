using System.Diagnostics.Metrics;

namespace Scheduler.Agent.Telemetry;

/// <summary>The agent's instruments on the meter <c>Scheduler.Agent</c> (served by <c>agent run --metrics-listen</c>).</summary>
public sealed class AgentMetrics : IDisposable
{
    public const string MeterName = "Scheduler.Agent";

    private readonly Meter _meter;
    private readonly Counter<long> _launched;
    private readonly Counter<long> _ended;
    private readonly Histogram<double> _launchSeconds;

    public AgentMetrics(AgentCore core)
    {
        ArgumentNullException.ThrowIfNull(core);
        _meter = new Meter(MeterName);
        _launched = _meter.CreateCounter<long>("sched.agent.tasks.launched", "{task}", "Tasks started by an executor, by executor");
        _ended = _meter.CreateCounter<long>("sched.agent.tasks.ended", "{task}", "Tasks that reached a terminal state, by state and reason");
        _launchSeconds = _meter.CreateHistogram<double>("sched.agent.task.launch.duration", "s", "Executor start latency (request to running), by executor",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] });
        _meter.CreateObservableGauge("sched.agent.tasks", () => new Measurement<int>(core.Tasks.Count(t => !t.Ended)), "{task}", "Tasks running or starting on this agent");
        _meter.CreateObservableGauge("sched.agent.status_updates.pending", () => new Measurement<int>(core.Updates.PendingCount), "{update}", "Status updates not yet acknowledged by their framework");
    }

    /// <summary>The meter these instruments live on (what a scrape endpoint serves).</summary>
    public Meter Meter => _meter;

    public void Launched(string executor, TimeSpan startLatency)
    {
        var tag = new KeyValuePair<string, object?>("executor", executor);
        _launched.Add(1, tag);
        _launchSeconds.Record(startLatency.TotalSeconds, tag);
    }

    public void Ended(Sched.V1.TaskState state, Sched.V1.TaskStatus.Types.Reason reason)
        => _ended.Add(1, new KeyValuePair<string, object?>("state", state.ToString()), new KeyValuePair<string, object?>("reason", reason.ToString()));

    public void Dispose() => _meter.Dispose();
}
