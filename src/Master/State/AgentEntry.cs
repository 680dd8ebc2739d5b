using Sched.V1;

namespace Scheduler.Master.State;

/// <summary>An agent as the master tracks it (its tasks are the <see cref="TaskBook"/>'s). Held by the <see cref="AgentBook"/>; owned by the master loop.</summary>
public sealed class AgentEntry(AgentInfo info)
{
    public AgentInfo Info { get; set; } = info;

    public string Id => Info.Id;

    public AgentStatus Status { get; set; } = AgentStatus.AgentActive;

    public bool Draining { get; set; }

    /// <summary>The principal the agent id is bound to (the first to register it; empty on an
    /// anonymous master). Only it may register the id again.</summary>
    public string Principal { get; set; } = "";

    /// <summary>The agent has registered with this master during its current term: from then on
    /// the master's record of the agent's tasks is authoritative (a task it does not know is one
    /// it gave up on). Before that — after a failover — the agent's report rebuilds the record.</summary>
    public bool RegisteredThisTerm { get; set; }

    /// <summary>The open link, null while unreachable. Setting a link makes it the one whose
    /// stamps say when the agent was last heard from, until the next link.</summary>
    public AgentLinkSession? Link
    {
        get;
        set
        {
            field = value;
            if (value is not null)
            {
                LatestLink = value;
            }
        }
    }

    /// <summary>The agent's latest link, open or closed (null before it registered with this master).</summary>
    public AgentLinkSession? LatestLink { get; private set; }

    /// <summary>When the agent was last heard from (any message on its latest link; the master's clock).</summary>
    public DateTimeOffset LastHeardFrom => LatestLink?.LastHeard ?? DateTimeOffset.MinValue;

    /// <summary>When the agent last heartbeat on its latest link (MinValue if never).</summary>
    public DateTimeOffset LastHeartbeat => LatestLink?.LastHeartbeat ?? DateTimeOffset.MinValue;

    /// <summary>Whether the agent has an entry in the master's agent-timeout heap.</summary>
    public bool InTimeoutHeap { get; set; }

    public double RegisteredTime { get; set; }

    /// <summary>Last heartbeat (epoch seconds), from the loop or the open link, whichever is later.</summary>
    public double LastHeartbeatTime
    {
        get
        {
            var viaLink = Link is { } link && link.LastHeartbeat.UtcTicks > 0 ? link.LastHeartbeat.ToUnixTimeMilliseconds() / 1000.0 : 0;
            return Math.Max(field, viaLink);
        }
        set => field = value;
    }

    public DateTimeOffset? UnreachableSince { get; set; }

    public ResourceStatistics? Usage { get; set; }

    /// <summary>Whether the allocator knows the agent (false for registry entries not yet back).</summary>
    public bool InAllocator { get; set; }

    /// <summary>Its configured, checkpointed, total and granted resources, and their rules.</summary>
    public AgentResources Resources { get; } = new(info.Resources);
}

/// <summary>One AgentLink.Connect stream. <see cref="AgentId"/> is written by the master loop;
/// <see cref="LastHeard"/> by the stream's reader (liveness is recorded off the loop, so a deep
/// command queue never makes a live agent look silent).</summary>
public sealed class AgentLinkSession(long id)
{
    private string? _agentId;
    private long _lastHeardTicks;
    private long _lastHeartbeatTicks;

    public long Id { get; } = id;

    /// <summary>Who opened the stream (empty: anonymous).</summary>
    public string Principal { get; init; } = "";

    public Outbox<MasterMessage> Outbox { get; } = new();

    /// <summary>The agent registered on this stream, null before <c>register</c> was handled.</summary>
    public string? AgentId
    {
        get => Volatile.Read(ref _agentId);
        set => Volatile.Write(ref _agentId, value);
    }

    /// <summary>When the stream last delivered any message (UTC; MinValue if never).</summary>
    public DateTimeOffset LastHeard => new(Volatile.Read(ref _lastHeardTicks), TimeSpan.Zero);

    /// <summary>When the stream last delivered a heartbeat (UTC; MinValue if never).</summary>
    public DateTimeOffset LastHeartbeat => new(Volatile.Read(ref _lastHeartbeatTicks), TimeSpan.Zero);

    /// <summary>Records that a message arrived at <paramref name="now"/> (any thread).</summary>
    public void Heard(DateTimeOffset now, bool heartbeat)
    {
        Volatile.Write(ref _lastHeardTicks, now.UtcTicks);
        if (heartbeat)
        {
            Volatile.Write(ref _lastHeartbeatTicks, now.UtcTicks);
        }
    }
}
