using Microsoft.Extensions.Time.Testing;
using Scheduler.Resilience;
using Xunit;

namespace Scheduler.FrameworkSdk.Tests;

public sealed class BackoffTests
{
    [Fact]
    public void Backoff_grows_to_its_ceiling_with_jitter()
    {
        var backoff = new Backoff(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(10));
        var random = new Random(42);
        for (var attempt = 0; attempt < 80; attempt++)
        {
            var ceiling = Math.Min(10_000, 500 * Math.Pow(2, attempt));
            var d = backoff.Delay(attempt, random).TotalMilliseconds;
            Assert.InRange(d, ceiling / 2, ceiling);
        }
    }

    [Fact]
    public void Without_jitter_the_delays_are_the_exact_capped_sequence()
    {
        var backoff = new Backoff(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(2)) { Jitter = 0 };
        var delays = Enumerable.Range(0, 7).Select(a => backoff.Delay(a).TotalMilliseconds).ToArray();
        Assert.Equal([100, 200, 400, 800, 1600, 2000, 2000], delays);
        Assert.Equal(100, backoff.Delay(-3).TotalMilliseconds);
    }

    [Fact]
    public void A_jitter_of_two_thirds_spreads_each_delay_over_half_to_one_and_a_half_of_the_base()
    {
        // The agent link's rule: d in [0.5, 1.5] · base, base doubling.
        var backoff = new Backoff(TimeSpan.FromMilliseconds(150), TimeSpan.FromSeconds(15)) { Jitter = 2.0 / 3 };
        var random = new Random(7);
        var seen = Enumerable.Range(0, 2000).Select(_ => backoff.Delay(1, random).TotalMilliseconds).ToArray();
        Assert.InRange(seen.Min(), 100 - 0.001, 110);
        Assert.InRange(seen.Max(), 290, 300 + 0.001);
    }

    [Fact]
    public async Task The_retry_pipeline_waits_the_backoff_on_the_given_clock_and_stops_at_the_first_accepted_outcome()
    {
        var time = new FakeTimeProvider();
        var backoff = new Backoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(4)) { Jitter = 0 };
        var attempts = new List<DateTimeOffset>();
        var retried = 0;
        var pipeline = backoff.Pipeline<int>(o => o.Exception is InvalidOperationException, time, new Random(1),
            _ => { retried++; return ValueTask.CompletedTask; });
        var run = pipeline.ExecuteAsync(_ =>
        {
            attempts.Add(time.GetUtcNow());
            return attempts.Count < 5 ? throw new InvalidOperationException("not yet") : ValueTask.FromResult(42);
        }).AsTask();
        var start = time.GetUtcNow();
        foreach (var step in new[] { 1, 2, 4, 4 })
        {
            Assert.False(run.IsCompleted);
            time.Advance(TimeSpan.FromSeconds(step) - TimeSpan.FromMilliseconds(1));
            Assert.False(run.IsCompleted);
            time.Advance(TimeSpan.FromMilliseconds(1));
            await WaitForAsync(() => attempts.Count == Array.IndexOf([1, 2, 4, 4], step) + 2 || run.IsCompleted);
        }
        Assert.Equal(42, await run.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(4, retried);
        Assert.Equal([0, 1, 3, 7, 11], attempts.Select(a => (a - start).TotalSeconds));
    }

    [Fact]
    public async Task The_retry_pipeline_does_not_retry_what_it_does_not_accept_nor_after_a_cancellation()
    {
        var backoff = new Backoff(TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(1));
        var pipeline = backoff.Pipeline<int>(o => o.Exception is InvalidOperationException, TimeProvider.System, new Random(1));
        var calls = 0;
        await Assert.ThrowsAsync<ArgumentException>(async () =>
            await pipeline.ExecuteAsync<int>(_ => { calls++; throw new ArgumentException("bad"); }));
        Assert.Equal(1, calls);
        using var cts = new CancellationTokenSource();
        // Once the caller cancelled, the failure is handed back as it is, without a retry.
        await Assert.ThrowsAsync<InvalidOperationException>(async () =>
            await pipeline.ExecuteAsync<int>(_ => { calls++; cts.Cancel(); throw new InvalidOperationException("again"); }, cts.Token));
        Assert.Equal(2, calls);
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the pipeline did not make the next attempt in 10 s");
            await Task.Yield();
        }
    }
}
