using Sched.V1;

namespace Scheduler.Jobs.Engine;

/// <summary>What the engine asks the framework to do after a change (the I/O it does not do itself).</summary>
public sealed class EngineActions
{
    /// <summary>Tasks to kill: (task id, agent id, grace).</summary>
    public List<(string TaskId, string AgentId, TimeSpan Grace)> Kills { get; } = [];

    /// <summary>Launches per offer, from a placement round.</summary>
    public Dictionary<string, List<TaskInfo>> Launches { get; } = new(StringComparer.Ordinal);

    /// <summary>Offers to keep for a gang that may fit with the next offers.</summary>
    public HashSet<string> Hold { get; } = new(StringComparer.Ordinal);

    /// <summary>Some instance waits for an offer.</summary>
    public bool WantsOffers => WantedRoles.Count > 0;

    /// <summary>The roles of the jobs with an instance waiting for an offer (the others are suppressed).</summary>
    public HashSet<string> WantedRoles { get; } = new(StringComparer.Ordinal);

    /// <summary>Whether <see cref="WantedRoles"/> was computed by this step (else the roles stay as they are).</summary>
    public bool RolesKnown { get; set; }
}
