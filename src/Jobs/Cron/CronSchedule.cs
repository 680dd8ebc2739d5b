using Cronos;

namespace Scheduler.Jobs;

/// <summary>
/// A cron schedule in a time zone (Cronos): five fields (minute hour day month weekday), or six
/// with seconds first. Daylight-saving gaps and overlaps follow Cronos: a time skipped by a
/// spring-forward runs at the jump, a time repeated by a fall-back runs once.
/// </summary>
public sealed class CronSchedule
{
    private readonly CronExpression _expression;
    private readonly TimeZoneInfo _zone;

    private CronSchedule(CronExpression expression, TimeZoneInfo zone, string text)
    {
        _expression = expression;
        _zone = zone;
        Text = text;
    }

    public string Text { get; }

    public TimeZoneInfo Zone => _zone;

    /// <summary>Parses <paramref name="text"/>; null with <paramref name="error"/> saying what to write when it is not a cron expression.</summary>
    public static CronSchedule? TryParse(string text, out string? error, string timeZone = "UTC")
    {
        ArgumentNullException.ThrowIfNull(text);
        error = null;
        var fields = text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        if (fields is not (5 or 6) && !text.TrimStart().StartsWith('@'))
        {
            error = $"schedule '{text}' has {fields} fields; write 5 (minute hour day month weekday, e.g. '0 2 * * *') or 6 with seconds first (e.g. '*/10 * * * * *')";
            return null;
        }
        if (!TimeZoneInfo.TryFindSystemTimeZoneById(timeZone, out var zone))
        {
            error = $"unknown time zone '{timeZone}'; write an IANA id such as UTC or Europe/Paris";
            return null;
        }
        try
        {
            var expression = CronExpression.Parse(text, fields == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);
            return new CronSchedule(expression, zone, text);
        }
        catch (CronFormatException e)
        {
            error = $"schedule '{text}' is not a cron expression ({e.Message}); write e.g. '0 2 * * *' (02:00 every day)";
            return null;
        }
    }

    /// <summary>Parses or throws <see cref="ArgumentException"/>.</summary>
    public static CronSchedule Parse(string text, string timeZone = "UTC") =>
        TryParse(text, out var error, timeZone) ?? throw new ArgumentException(error, nameof(text));

    /// <summary>The first occurrence strictly after <paramref name="after"/>, or null if none.</summary>
    public DateTimeOffset? Next(DateTimeOffset after) => _expression.GetNextOccurrence(after, _zone);
}
