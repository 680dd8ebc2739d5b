namespace Scheduler.LinkClient;

/// <summary>The heartbeat interval of one connection: set at registration, changed by the
/// master's pings (read by the heartbeat loop, written by the read loop).</summary>
public sealed class HeartbeatInterval(TimeSpan initial)
{
    private long _ticks = initial.Ticks;

    public TimeSpan Value
    {
        get => TimeSpan.FromTicks(Volatile.Read(ref _ticks));
        set => Volatile.Write(ref _ticks, value.Ticks);
    }

    /// <summary>How long the master may stay silent before the link is given up: three pings
    /// missed, at the longer of the interval the current tick was scheduled with and one announced
    /// since (a new interval applies from the next tick).</summary>
    public static TimeSpan AllowedSilence(TimeSpan scheduled, TimeSpan announced) =>
        (announced > scheduled ? announced : scheduled) * 3 + TimeSpan.FromMilliseconds(200);
}
