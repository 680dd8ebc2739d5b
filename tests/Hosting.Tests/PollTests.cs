namespace Scheduler.Hosting.Tests;

/// <summary>The shared poll-until helper (tests/TestSupport) that the test projects wait with.</summary>
public class PollTests
{
    [Fact]
    public async Task Completes_once_the_condition_holds_and_checks_until_then()
    {
        var checks = 0;
        await Poll.UntilAsync(() => ++checks >= 3, TimeSpan.FromSeconds(10), "the third check");
        Assert.Equal(3, checks);

        var asyncChecks = 0;
        await Poll.UntilAsync(async () =>
        {
            await Task.Yield();
            return ++asyncChecks >= 3;
        }, TimeSpan.FromSeconds(10));
        Assert.Equal(3, asyncChecks);
    }

    [Fact]
    public async Task A_condition_that_already_holds_is_checked_once_even_with_no_time_left()
    {
        var checks = 0;
        await Poll.UntilAsync(() => ++checks > 0, TimeSpan.Zero);
        Assert.Equal(1, checks);
    }

    [Fact]
    public async Task A_timeout_names_what_was_awaited()
    {
        var e = await Assert.ThrowsAsync<TimeoutException>(() => Poll.UntilAsync(() => false, TimeSpan.FromMilliseconds(100), "the moon to turn blue"));
        Assert.Contains("the moon to turn blue", e.Message, StringComparison.Ordinal);
        Assert.Contains("100 ms", e.Message, StringComparison.Ordinal);

        var seen = 0;
        var lazy = await Assert.ThrowsAsync<TimeoutException>(() => Poll.UntilAsync(() => Task.FromResult(++seen < 0), TimeSpan.FromMilliseconds(100), () => $"a negative count (last {seen})"));
        Assert.Contains($"(last {seen})", lazy.Message, StringComparison.Ordinal);
        Assert.True(seen >= 2, "the condition is re-checked until the deadline");

        var plain = await Assert.ThrowsAsync<TimeoutException>(() => Poll.UntilAsync(() => false, TimeSpan.FromMilliseconds(50)));
        Assert.Contains("did not hold within 50 ms", plain.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HoldsWithin_answers_without_throwing()
    {
        Assert.False(await Poll.HoldsWithinAsync(() => false, TimeSpan.FromMilliseconds(50)));
        var flips = 0;
        Assert.True(await Poll.HoldsWithinAsync(() => ++flips == 2, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Exceptions_of_the_condition_propagate_at_once()
    {
        var checks = 0;
        await Assert.ThrowsAsync<InvalidOperationException>(() => Poll.UntilAsync(() => ++checks > 0 ? throw new InvalidOperationException("boom") : false, TimeSpan.FromSeconds(10)));
        Assert.Equal(1, checks);
    }
}
