using Microsoft.Extensions.Time.Testing;

namespace Scheduler.Jobs.Tests;

public class CronScheduleTests
{
    [Fact]
    public void Five_fields_fire_on_the_minute_in_the_given_zone()
    {
        var schedule = CronSchedule.Parse("0 2 * * *", "Europe/Paris");
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 3, 12, 0, 0, TimeSpan.Zero));
        var next = schedule.Next(clock.GetUtcNow())!.Value;
        // 02:00 in Paris in December is 01:00 UTC, the next day.
        Assert.Equal(new DateTimeOffset(2026, 12, 4, 1, 0, 0, TimeSpan.Zero), next.ToUniversalTime());
    }

    [Fact]
    public void Six_fields_take_seconds_first()
    {
        var schedule = CronSchedule.Parse("*/10 * * * * *");
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 3, TimeSpan.Zero));
        var first = schedule.Next(clock.GetUtcNow())!.Value;
        Assert.Equal(10, first.Second);
        clock.Advance(first - clock.GetUtcNow());
        Assert.Equal(20, schedule.Next(clock.GetUtcNow())!.Value.Second);
    }

    [Fact]
    public void A_time_skipped_by_daylight_saving_runs_once_at_the_jump()
    {
        // Paris springs forward on 2027-03-28 at 02:00 -> 03:00: 02:30 does not exist that day.
        var schedule = CronSchedule.Parse("30 2 * * *", "Europe/Paris");
        var next = schedule.Next(new DateTimeOffset(2027, 3, 27, 12, 0, 0, TimeSpan.Zero))!.Value;
        Assert.Equal(new DateTimeOffset(2027, 3, 28, 1, 0, 0, TimeSpan.Zero), next.ToUniversalTime());
    }

    [Fact]
    public void Bad_expressions_say_what_to_write()
    {
        Assert.Null(CronSchedule.TryParse("0 25 * * *", out var error));
        Assert.Contains("'0 2 * * *'", error, StringComparison.Ordinal);
    }
}
