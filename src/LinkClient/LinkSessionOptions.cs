namespace Scheduler.LinkClient;

/// <summary>Settings of a <see cref="LinkSession"/>.</summary>
public sealed class LinkSessionOptions
{
    /// <summary>The clock of the heartbeats, the keepalive deadline and the registration timeout.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>How long a master has to answer the registration (null: no limit).</summary>
    public TimeSpan? RegistrationTimeout { get; init; }

    /// <summary>
    /// Give up a master that stops answering: the session ends with a <see cref="TimeoutException"/>
    /// when nothing came from the master for <see cref="HeartbeatInterval.AllowedSilence"/> (three
    /// pings missed). On for agents; a test double that must keep a stream the test holds turns it off.
    /// </summary>
    public bool LeaveSilentMaster { get; init; } = true;

    /// <summary>When set, the first heartbeat comes at a random fraction of the interval drawn from
    /// it (a thread-safe source), so that agents registering together do not heartbeat together.</summary>
    public Random? HeartbeatStagger { get; init; }
}
