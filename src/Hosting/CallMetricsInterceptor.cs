using System.Diagnostics;
using System.Diagnostics.Metrics;
using Grpc.Core;

namespace Scheduler.Hosting;

/// <summary>
/// Per-method call metrics on the daemon's meter: the histogram <c>{prefix}.rpc.server.duration</c>
/// (seconds, from the handler's start to its end; for streams, the stream's life) with the tags
/// <c>method</c> (<c>/sched.v1.Scheduler/Accept</c>) and <c>code</c> (the gRPC status name).
/// In Prometheus: <c>{prefix}_rpc_server_duration_seconds_bucket|sum|count{method,code}</c>.
/// </summary>
public sealed class CallMetricsInterceptor : ServerCallInterceptor
{
    private static readonly double[] Buckets = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300, 3600];
    private readonly Histogram<double> _duration;

    /// <param name="meter">The daemon's meter (<c>Scheduler.Master</c>, <c>Scheduler.Agent</c>).</param>
    /// <param name="prefix">The instrument name prefix, <c>sched.master</c> or <c>sched.agent</c>.</param>
    public CallMetricsInterceptor(Meter meter, string prefix)
    {
        ArgumentNullException.ThrowIfNull(meter);
        _duration = meter.CreateHistogram(prefix + ".rpc.server.duration", unit: "s", description: "gRPC calls served, by method and status code",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = Buckets });
    }

    protected override async Task<T> AroundAsync<T>(ServerCallContext context, Func<Task<T>> call)
    {
        var start = Stopwatch.GetTimestamp();
        Exception? error = null;
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            error = e;
            throw;
        }
        finally
        {
            _duration.Record(Stopwatch.GetElapsedTime(start).TotalSeconds,
                new KeyValuePair<string, object?>("method", context.Method),
                new KeyValuePair<string, object?>("code", OutcomeOf(context, error).ToString()));
        }
    }
}
