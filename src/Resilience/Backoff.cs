using Polly;
using Polly.Retry;

namespace Scheduler.Resilience;

/// <summary>
/// Exponential backoff, the project's one rule for waiting between retries. Retry number
/// <c>n</c> (0-based) waits a random time in <c>[d·(1 − Jitter), d]</c> with
/// <c>d = min(Max, Initial · Multiplier^n)</c>, so that many clients losing the same server do not
/// come back in lock-step. <see cref="Jitter"/> 0 gives the exact doubling sequence.
/// </summary>
/// <param name="Initial">The ceiling of the first retry's delay.</param>
/// <param name="Max">The largest ceiling.</param>
/// <param name="Multiplier">Growth per retry (at least 1).</param>
public sealed record Backoff(TimeSpan Initial, TimeSpan Max, double Multiplier = 2.0)
{
    /// <summary>The default for reconnecting to masters: 0.5 s doubling to 10 s, jitter ½.</summary>
    public static Backoff Default { get; } = new(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(10));

    /// <summary>The fraction of the ceiling that is random (0: none; 0.5, the default: a delay in
    /// <c>[d/2, d]</c>; at most 1).</summary>
    public double Jitter { get; init; } = 0.5;

    /// <summary>The delay before retry number <paramref name="attempt"/> (0-based; negative counts as 0).</summary>
    /// <param name="attempt">How many retries came before this one.</param>
    /// <param name="random">The source of jitter (unused when <see cref="Jitter"/> is 0; null: <see cref="Random.Shared"/>).</param>
    public TimeSpan Delay(int attempt, Random? random = null)
    {
        var ceiling = Ceiling(attempt);
        if (Jitter <= 0)
        {
            return TimeSpan.FromTicks((long)ceiling);
        }
        var jitter = Math.Min(Jitter, 1.0);
        return TimeSpan.FromTicks((long)(ceiling * (1 - jitter + (jitter * (random ?? Random.Shared).NextDouble()))));
    }

    /// <summary>
    /// A Polly retry pipeline that retries, without limit on the number of attempts, every outcome
    /// <paramref name="retry"/> accepts, waiting <see cref="Delay"/> between attempts on
    /// <paramref name="time"/>. The caller's cancellation token bounds it; cancellation is never retried.
    /// </summary>
    /// <param name="retry">Which outcomes to retry (an exception or a result).</param>
    /// <param name="time">The clock the delays run on.</param>
    /// <param name="random">The source of jitter.</param>
    /// <param name="onRetry">Called before each wait, with the outcome that is retried.</param>
    public ResiliencePipeline<T> Pipeline<T>(Func<Outcome<T>, bool> retry, TimeProvider time, Random random,
        Func<Outcome<T>, ValueTask>? onRetry = null)
    {
        ArgumentNullException.ThrowIfNull(retry);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(random);
        var options = new RetryStrategyOptions<T>
        {
            MaxRetryAttempts = int.MaxValue,
            ShouldHandle = args => ValueTask.FromResult(
                !args.Context.CancellationToken.IsCancellationRequested
                && args.Outcome.Exception is not OperationCanceledException
                && retry(args.Outcome)),
            DelayGenerator = args => ValueTask.FromResult<TimeSpan?>(Delay(args.AttemptNumber, random)),
            OnRetry = onRetry is null ? null : args => onRetry(args.Outcome),
        };
        return new ResiliencePipelineBuilder<T> { TimeProvider = time }.AddRetry(options).Build();
    }

    /// <summary>
    /// A Polly retry pipeline for calls without a result: retries, without limit on the number of
    /// attempts, every exception <paramref name="retry"/> accepts, waiting <see cref="Delay"/> between
    /// attempts on <paramref name="time"/>. The caller's cancellation token bounds it.
    /// </summary>
    /// <param name="retry">Which exceptions to retry.</param>
    /// <param name="time">The clock the delays run on.</param>
    /// <param name="random">The source of jitter.</param>
    /// <param name="onRetry">Called before each wait, with the exception that is retried.</param>
    public ResiliencePipeline Pipeline(Func<Exception, bool> retry, TimeProvider time, Random random,
        Func<Exception, ValueTask>? onRetry = null)
    {
        ArgumentNullException.ThrowIfNull(retry);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(random);
        var options = new RetryStrategyOptions
        {
            MaxRetryAttempts = int.MaxValue,
            ShouldHandle = args => ValueTask.FromResult(
                !args.Context.CancellationToken.IsCancellationRequested
                && args.Outcome.Exception is { } e and not OperationCanceledException
                && retry(e)),
            DelayGenerator = args => ValueTask.FromResult<TimeSpan?>(Delay(args.AttemptNumber, random)),
            OnRetry = onRetry is null ? null : args => onRetry(args.Outcome.Exception!),
        };
        return new ResiliencePipelineBuilder { TimeProvider = time }.AddRetry(options).Build();
    }

    private double Ceiling(int attempt)
    {
        var exponent = Math.Min(Math.Max(attempt, 0), 62);
        var ceiling = Math.Min(Max.Ticks, Initial.Ticks * Math.Pow(Multiplier, exponent));
        return Math.Max(ceiling, 1);
    }
}
