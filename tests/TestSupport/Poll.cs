using System.Diagnostics;

namespace Scheduler.Testing;

/// <summary>
/// Waits until a condition on observable state holds, with a timeout: the condition is checked
/// at once, then again after each short pause, and once more when the time is up, so a condition
/// that holds by the deadline is never reported as a failure. This awaits an event that has no
/// notification of its own (a state query), bounded by the timeout; it is not a sleep to
/// synchronise. Exceptions thrown by the condition propagate at once.
/// </summary>
public static class Poll
{
    /// <summary>The pause between checks unless a call names another.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromMilliseconds(20);

    /// <summary>Completes when <paramref name="condition"/> holds; throws
    /// <see cref="TimeoutException"/> (naming <paramref name="what"/>) when it has not held
    /// within <paramref name="timeout"/>.</summary>
    /// <param name="condition">The condition on the state waited for.</param>
    /// <param name="timeout">How long to wait.</param>
    /// <param name="what">What is waited for, for the failure message (e.g. "the agent to register").</param>
    /// <param name="interval">The pause between checks; <see cref="DefaultInterval"/> if null.</param>
    public static Task UntilAsync(Func<bool> condition, TimeSpan timeout, string? what = null, TimeSpan? interval = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        return UntilAsync(() => Task.FromResult(condition()), timeout, () => what, interval);
    }

    /// <inheritdoc cref="UntilAsync(Func{bool}, TimeSpan, string?, TimeSpan?)"/>
    public static Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string? what = null, TimeSpan? interval = null) =>
        UntilAsync(condition, timeout, () => what, interval);

    /// <summary>Completes when <paramref name="condition"/> holds; throws
    /// <see cref="TimeoutException"/> when it has not held within <paramref name="timeout"/>, with
    /// the description <paramref name="what"/> computes then (so it can report the state seen
    /// last).</summary>
    /// <param name="condition">The condition on the state waited for.</param>
    /// <param name="timeout">How long to wait.</param>
    /// <param name="what">Describes what was waited for (or the state at the timeout); called only on failure.</param>
    /// <param name="interval">The pause between checks; <see cref="DefaultInterval"/> if null.</param>
    public static Task UntilAsync(Func<bool> condition, TimeSpan timeout, Func<string?> what, TimeSpan? interval = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        return UntilAsync(() => Task.FromResult(condition()), timeout, what, interval);
    }

    /// <inheritdoc cref="UntilAsync(Func{bool}, TimeSpan, Func{string?}, TimeSpan?)"/>
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<string?> what, TimeSpan? interval = null)
    {
        ArgumentNullException.ThrowIfNull(what);
        if (!await HoldsWithinAsync(condition, timeout, interval).ConfigureAwait(false))
        {
            var description = what();
            throw new TimeoutException(string.IsNullOrWhiteSpace(description)
                ? $"the condition did not hold within {Seconds(timeout)}"
                : $"timed out after {Seconds(timeout)} waiting for: {description}");
        }
    }

    /// <summary>Whether <paramref name="condition"/> held within <paramref name="timeout"/>
    /// (true as soon as it does; false, without throwing, when the time is up).</summary>
    /// <param name="condition">The condition on the state waited for.</param>
    /// <param name="timeout">How long to wait.</param>
    /// <param name="interval">The pause between checks; <see cref="DefaultInterval"/> if null.</param>
    public static Task<bool> HoldsWithinAsync(Func<bool> condition, TimeSpan timeout, TimeSpan? interval = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        return HoldsWithinAsync(() => Task.FromResult(condition()), timeout, interval);
    }

    /// <inheritdoc cref="HoldsWithinAsync(Func{bool}, TimeSpan, TimeSpan?)"/>
    public static async Task<bool> HoldsWithinAsync(Func<Task<bool>> condition, TimeSpan timeout, TimeSpan? interval = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        ArgumentOutOfRangeException.ThrowIfLessThan(timeout, TimeSpan.Zero);
        var pause = interval ?? DefaultInterval;
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(pause, TimeSpan.Zero, nameof(interval));
        var clock = Stopwatch.StartNew();
        while (true)
        {
            // Read the clock before the check: a check that starts in time and holds counts.
            var late = clock.Elapsed >= timeout;
            if (await condition().ConfigureAwait(false))
            {
                return true;
            }
            if (late)
            {
                return false;
            }
            var left = timeout - clock.Elapsed;
            if (left > TimeSpan.Zero)
            {
                await Task.Delay(left < pause ? left : pause).ConfigureAwait(false);
            }
        }
    }

    private static string Seconds(TimeSpan timeout) =>
        timeout.TotalSeconds >= 1 ? $"{timeout.TotalSeconds:0.#} s" : $"{timeout.TotalMilliseconds:0} ms";
}
