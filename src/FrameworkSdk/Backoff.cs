namespace Scheduler.FrameworkSdk;

/// <summary>
/// Exponential backoff with jitter for reconnecting to masters. Attempt <c>n</c> (0-based) waits a
/// random time in <c>[d/2, d]</c> with <c>d = min(Max, Initial · Multiplier^n)</c>, so that many
/// frameworks losing the same master do not come back in lock-step.
/// </summary>
/// <param name="Initial">The delay of the first retry (default 0.5 s).</param>
/// <param name="Max">The longest delay (default 10 s).</param>
/// <param name="Multiplier">Growth per attempt (default 2).</param>
public sealed record Backoff(TimeSpan Initial, TimeSpan Max, double Multiplier = 2.0)
{
    /// <summary>The default policy: 0.5 s doubling to 10 s.</summary>
    public static Backoff Default { get; } = new(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(10));

    /// <summary>The delay before retry number <paramref name="attempt"/> (0-based).</summary>
    /// <param name="attempt">How many retries came before this one.</param>
    /// <param name="random">The source of jitter.</param>
    public TimeSpan Delay(int attempt, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        var exponent = Math.Min(Math.Max(attempt, 0), 30);
        var ceiling = Math.Min(Max.TotalMilliseconds, Initial.TotalMilliseconds * Math.Pow(Multiplier, exponent));
        ceiling = Math.Max(ceiling, 1);
        return TimeSpan.FromMilliseconds((ceiling / 2) + (random.NextDouble() * ceiling / 2));
    }
}
