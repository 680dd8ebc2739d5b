namespace Scheduler.Etcd;

/// <summary>Exponential backoff with jitter: a random delay in [d/2, d], d doubling up to a cap.</summary>
internal sealed class Backoff
{
    private readonly TimeSpan _initial;
    private readonly TimeSpan _max;
    private readonly Random _random;
    private TimeSpan _next;

    public Backoff(TimeSpan initial, TimeSpan max, Random? random = null)
    {
        _initial = initial;
        _max = max;
        _random = random ?? Random.Shared;
        _next = initial;
    }

    public TimeSpan Next()
    {
        var d = _next;
        _next = TimeSpan.FromTicks(Math.Min(_max.Ticks, d.Ticks * 2));
        return TimeSpan.FromTicks(d.Ticks / 2 + (long)(_random.NextDouble() * (d.Ticks / 2)));
    }

    public void Reset() => _next = _initial;
}
