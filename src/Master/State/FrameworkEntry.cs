using Sched.V1;

namespace Scheduler.Master.State;

/// <summary>A framework as the master tracks it (its tasks are the <see cref="TaskBook"/>'s). Held by the <see cref="FrameworkBook"/>; owned by the master loop.</summary>
public sealed class FrameworkEntry(FrameworkInfo info)
{
    public FrameworkInfo Info { get; set; } = info;

    public string Id => Info.Id;

    /// <summary>The current subscription, null while disconnected.</summary>
    public FrameworkSubscription? Subscription { get; set; }

    public double RegisteredTime { get; set; }

    /// <summary>When the framework disconnected (epoch seconds), 0 while connected.</summary>
    public double DisconnectedTime { get; set; }

    /// <summary>Teardown deadline while disconnected.</summary>
    public DateTimeOffset? FailoverDeadline { get; set; }

    public HashSet<string> SuppressedRoles { get; } = new(StringComparer.Ordinal);

    public bool PartitionAware => Info.Capabilities.Contains(FrameworkCapability.PartitionAware);

    public bool Connected => Subscription is not null;
}

/// <summary>One Scheduler.Subscribe stream.</summary>
public sealed class FrameworkSubscription(string streamId)
{
    public string StreamId { get; } = streamId;

    public Outbox<Event> Outbox { get; } = new();
}
