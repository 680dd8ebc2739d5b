using System.Globalization;
using System.Text;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace Scheduler.Metrics;

/// <summary>
/// Writes OpenTelemetry metrics in the Prometheus text exposition format (version 0.0.4), naming
/// them the way the OpenTelemetry → Prometheus compatibility rules do: dots and other invalid
/// characters become <c>_</c>, the unit is appended as a suffix (<c>ms</c> → <c>_milliseconds</c>,
/// <c>By</c> → <c>_bytes</c>, <c>s</c> → <c>_seconds</c>; annotations such as <c>{task}</c> are
/// dropped), and monotonic sums end in <c>_total</c>.
/// </summary>
public static class PrometheusText
{
    /// <summary>The content type of the exposition.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>Appends every metric of <paramref name="batch"/> to <paramref name="output"/>.</summary>
    public static void Write(StringBuilder output, in Batch<Metric> batch)
    {
        ArgumentNullException.ThrowIfNull(output);
        foreach (var metric in batch)
        {
            Write(output, metric);
        }
    }

    /// <summary>Appends one metric (HELP, TYPE and its samples) to <paramref name="output"/>.</summary>
    public static void Write(StringBuilder output, Metric metric)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(metric);
        var baseName = MetricName(metric.Name, metric.Unit);
        var (type, name) = metric.MetricType switch
        {
            MetricType.LongSum or MetricType.DoubleSum => ("counter", baseName + "_total"),
            MetricType.Histogram => ("histogram", baseName),
            MetricType.LongGauge or MetricType.DoubleGauge or MetricType.LongSumNonMonotonic or MetricType.DoubleSumNonMonotonic => ("gauge", baseName),
            _ => ("untyped", baseName), // exponential histograms are not configured by our hosts
        };
        if (type == "untyped")
        {
            return;
        }
        output.Append("# HELP ").Append(name).Append(' ').Append(EscapeHelp(metric.Description)).Append('\n');
        output.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        foreach (ref readonly var point in metric.GetMetricPoints())
        {
            var labels = Labels(point);
            switch (metric.MetricType)
            {
                case MetricType.LongSum:
                case MetricType.LongSumNonMonotonic:
                    Sample(output, name, labels, null, point.GetSumLong());
                    break;
                case MetricType.DoubleSum:
                case MetricType.DoubleSumNonMonotonic:
                    Sample(output, name, labels, null, point.GetSumDouble());
                    break;
                case MetricType.LongGauge:
                    Sample(output, name, labels, null, point.GetGaugeLastValueLong());
                    break;
                case MetricType.DoubleGauge:
                    Sample(output, name, labels, null, point.GetGaugeLastValueDouble());
                    break;
                case MetricType.Histogram:
                    long cumulative = 0;
                    foreach (var bucket in point.GetHistogramBuckets())
                    {
                        cumulative += bucket.BucketCount;
                        var le = double.IsPositiveInfinity(bucket.ExplicitBound) ? "+Inf" : Number(bucket.ExplicitBound);
                        Sample(output, name + "_bucket", labels, le, cumulative);
                    }
                    Sample(output, name + "_sum", labels, null, point.GetHistogramSum());
                    Sample(output, name + "_count", labels, null, point.GetHistogramCount());
                    break;
                default:
                    break;
            }
        }
    }

    /// <summary>The Prometheus name of an instrument: <c>sched.master.offers</c> with unit <c>ms</c> → <c>sched_master_offers_milliseconds</c>.</summary>
    public static string MetricName(string instrument, string? unit)
    {
        ArgumentNullException.ThrowIfNull(instrument);
        var name = Sanitize(instrument);
        var suffix = UnitSuffix(unit);
        if (suffix.Length > 0 && !name.EndsWith("_" + suffix, StringComparison.Ordinal))
        {
            name += "_" + suffix;
        }
        return name;
    }

    private static string UnitSuffix(string? unit)
    {
        if (string.IsNullOrEmpty(unit) || unit.StartsWith('{'))
        {
            return "";
        }
        return unit switch
        {
            "ms" => "milliseconds",
            "s" => "seconds",
            "us" => "microseconds",
            "ns" => "nanoseconds",
            "By" => "bytes",
            "KiBy" => "kibibytes",
            "MiBy" => "mebibytes",
            "1" => "ratio",
            "%" => "percent",
            _ => Sanitize(unit.Replace("/", "_per_", StringComparison.Ordinal)).Trim('_'),
        };
    }

    private static string Sanitize(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            sb.Append(c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_' or ':' ? c : '_');
        }
        if (sb.Length == 0 || char.IsAsciiDigit(sb[0]))
        {
            sb.Insert(0, '_');
        }
        return sb.ToString();
    }

    private static string Labels(in MetricPoint point)
    {
        var sb = new StringBuilder();
        foreach (var tag in point.Tags)
        {
            sb.Append(sb.Length == 0 ? "" : ",").Append(Sanitize(tag.Key)).Append("=\"")
              .Append(EscapeLabel(Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? "")).Append('"');
        }
        return sb.ToString();
    }

    private static void Sample(StringBuilder output, string name, string labels, string? le, double value)
    {
        output.Append(name);
        if (labels.Length > 0 || le is not null)
        {
            output.Append('{').Append(labels);
            if (le is not null)
            {
                output.Append(labels.Length > 0 ? "," : "").Append("le=\"").Append(le).Append('"');
            }
            output.Append('}');
        }
        output.Append(' ').Append(Number(value)).Append('\n');
    }

    private static string Number(double value) => value switch
    {
        double.PositiveInfinity => "+Inf",
        double.NegativeInfinity => "-Inf",
        double.NaN => "NaN",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };

    private static string EscapeHelp(string? text)
        => (text ?? "").Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private static string EscapeLabel(string text)
        => text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
