using Sched.V1;

namespace Scheduler.Master.State;

/// <summary>An agent as the master tracks it. Owned by the master loop.</summary>
public sealed class AgentEntry(AgentInfo info)
{
    public AgentInfo Info { get; set; } = info;

    public string Id => Info.Id;

    public AgentStatus Status { get; set; } = AgentStatus.AgentActive;

    public bool Draining { get; set; }

    /// <summary>The open link, null while unreachable.</summary>
    public AgentLinkSession? Link { get; set; }

    public DateTimeOffset LastSeen { get; set; }

    public double RegisteredTime { get; set; }

    public double LastHeartbeatTime { get; set; }

    public DateTimeOffset? UnreachableSince { get; set; }

    public ResourceStatistics? Usage { get; set; }

    /// <summary>Whether the allocator knows the agent (false for registry entries not yet back).</summary>
    public bool InAllocator { get; set; }

    public ResourceBag Total { get; set; } = new(info.Resources);

    /// <summary>The agent's total as resources: its configured resources with the dynamic
    /// reservations and persistent volumes of <see cref="Checkpointed"/> applied.</summary>
    public IReadOnlyList<Resource> TotalResources { get; set; } = [.. info.Resources];

    /// <summary>Dynamic reservations and persistent volumes on the agent (persisted in the registry
    /// as <c>AgentRecord.checkpointed_resources</c>).</summary>
    public List<Resource> Checkpointed { get; set; } = [];

    /// <summary>What the allocator has handed out on this agent and not got back (offers + tasks).</summary>
    public ResourceBag Granted { get; } = new();

    /// <summary>Live tasks on this agent by (framework, task id).</summary>
    public Dictionary<(string FrameworkId, string TaskId), TaskRecord> Tasks { get; } = [];
}

/// <summary>One AgentLink.Connect stream.</summary>
public sealed class AgentLinkSession(long id)
{
    public long Id { get; } = id;

    public Outbox<MasterMessage> Outbox { get; } = new();

    public string? AgentId { get; set; }
}
