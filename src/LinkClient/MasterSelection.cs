using Scheduler.Protocol.Masters;
using Scheduler.Resilience;

namespace Scheduler.LinkClient;

/// <summary>
/// Which master an agent contacts next, and how long it waits first. The choice follows the
/// rules of <see cref="MasterRotation"/> (leader hints, except one naming the master that just
/// failed; otherwise the next configured master). Retries quickly while masters still answer or
/// a round through the configured masters is not exhausted; backs off exponentially (with
/// jitter) only when a whole round failed to connect. Not thread-safe: one per connection loop.
/// </summary>
public sealed class MasterSelection
{
    private readonly MasterRotation _rotation;
    private readonly TimeSpan _minBackoff;
    private readonly Backoff _backoff;
    private readonly Random _random;
    private int _immediateFollows;
    private int _failedRounds;

    /// <summary>Fresh leader hints followed at once, without the quick-retry pause, before pausing
    /// (guards against two masters with stale views naming each other).</summary>
    private const int MaxImmediateFollows = 3;

    /// <param name="masters">The configured masters (at least one).</param>
    /// <param name="minBackoff">First backoff after a failed round; quick retries are a fraction of it.</param>
    /// <param name="maxBackoff">Largest backoff.</param>
    /// <param name="random">Jitter source.</param>
    public MasterSelection(IReadOnlyList<string> masters, TimeSpan minBackoff, TimeSpan maxBackoff, Random random)
    {
        _rotation = new MasterRotation(masters);
        _minBackoff = minBackoff;
        // A delay in [0.5, 1.5] · d, d = minBackoff doubling to maxBackoff.
        _backoff = new Backoff(minBackoff * 1.5, maxBackoff * 1.5) { Jitter = 2.0 / 3 };
        _random = random;
    }

    /// <summary>The master to contact now.</summary>
    public string Next() => _rotation.Current;

    /// <summary>The agent registered: reset the backoff.</summary>
    public void Connected()
    {
        _failedRounds = 0;
        _immediateFollows = 0;
        _rotation.Connected();
    }

    /// <summary>A live master that does not lead answered with the leader hint
    /// <paramref name="leader"/> (possibly empty). Returns the delay before the next attempt.</summary>
    public TimeSpan Redirected(string address, string? leader)
    {
        // A new leader is named: go there at once (the election is over).
        if (_rotation.Redirected(address, leader) && _immediateFollows++ < MaxImmediateFollows)
        {
            return TimeSpan.Zero;
        }
        return Quick();
    }

    /// <summary>Connecting to, or talking with, <paramref name="address"/> failed. Returns the delay
    /// before the next attempt.</summary>
    public TimeSpan Failed(string address)
    {
        _immediateFollows = 0;
        if (!_rotation.Failed(address))
        {
            return Quick();
        }
        return _backoff.Delay(_failedRounds++, _random);
    }

    private TimeSpan Quick() => TimeSpan.FromTicks((long)(_minBackoff.Ticks * (0.1 + (0.2 * _random.NextDouble()))));
}
