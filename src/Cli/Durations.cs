using System.Globalization;

namespace Scheduler.Cli;

/// <summary>Durations as people write them: <c>90s</c>, <c>30m</c>, <c>12h</c>, <c>30d</c>, <c>2w</c>, or plain seconds.</summary>
public static class Durations
{
    /// <exception cref="CliException">A usage error naming <paramref name="option"/> when <paramref name="text"/> is not a positive duration.</exception>
    public static TimeSpan Parse(string text, string option)
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim();
        var unit = t.Length > 0 && char.IsLetter(t[^1]) ? t[^1] : 's';
        var number = char.IsLetter(unit) && t.Length > 0 && char.IsLetter(t[^1]) ? t[..^1] : t;
        var seconds = unit switch
        {
            's' => 1.0,
            'm' => 60.0,
            'h' => 3600.0,
            'd' => 86400.0,
            'w' => 7 * 86400.0,
            _ => double.NaN,
        };
        if (double.IsNaN(seconds) || !double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value) || value <= 0 || value * seconds > 10 * 366 * 86400.0)
        {
            throw CliException.BadInput($"{option} takes a positive duration of at most ten years such as 90s, 30m, 12h, 30d or 2w; got '{text}'");
        }
        return TimeSpan.FromSeconds(value * seconds);
    }
}
