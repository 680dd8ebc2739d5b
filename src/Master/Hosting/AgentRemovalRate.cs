using System.Globalization;

namespace Scheduler.Master;

/// <summary>
/// At most <see cref="Count"/> agents marked unreachable by the agent timeout per <see cref="Per"/>,
/// spaced evenly (Mesos' <c>--agent_removal_rate_limit</c>): a network partition that silences
/// half the cluster at once then costs frameworks one agent's tasks at a time, not half the
/// cluster's, while the partition may still heal.
/// </summary>
public sealed record AgentRemovalRate(int Count, TimeSpan Per)
{
    /// <summary>The pause between two removals.</summary>
    public TimeSpan Spacing => Per / Count;

    /// <summary>Parses <c>N/DURATION</c>, the duration a number with a unit (<c>s</c>, <c>m</c>/<c>min</c>/<c>mins</c>,
    /// <c>h</c>/<c>hrs</c>) or a bare unit (one of it): <c>1/20mins</c>, <c>10/1m</c>, <c>5/s</c>.</summary>
    public static bool TryParse(string text, out AgentRemovalRate rate, out string? problem)
    {
        rate = null!;
        problem = null;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || !int.TryParse(text.AsSpan(0, slash), NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count <= 0)
        {
            problem = $"'{text}' is not N/DURATION with N a positive whole number of agents (e.g. 1/20mins, 10/1m, 5/s)";
            return false;
        }
        var duration = text[(slash + 1)..].Trim();
        var unitStart = 0;
        while (unitStart < duration.Length && (char.IsAsciiDigit(duration[unitStart]) || duration[unitStart] == '.'))
        {
            unitStart++;
        }
        var amount = unitStart == 0 ? 1 : double.TryParse(duration.AsSpan(0, unitStart), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var a) ? a : -1;
        TimeSpan? unit = duration[unitStart..] switch
        {
            "s" or "sec" or "secs" => TimeSpan.FromSeconds(1),
            "m" or "min" or "mins" => TimeSpan.FromMinutes(1),
            "h" or "hr" or "hrs" => TimeSpan.FromHours(1),
            _ => null,
        };
        if (unit is null || amount <= 0 || double.IsInfinity(amount))
        {
            problem = $"'{text}': the duration '{duration}' is not a positive number with a unit s, m (min, mins) or h (hr, hrs), e.g. 1/20mins";
            return false;
        }
        rate = new AgentRemovalRate(count, unit.Value * amount);
        return true;
    }

    public override string ToString() => $"{Count}/{Per.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)}s";
}
