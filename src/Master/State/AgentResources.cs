using Sched.V1;

namespace Scheduler.Master.State;

/// <summary>
/// One agent's resources as the master accounts them, and the only code that changes them: what
/// the agent is configured with, the dynamic reservations and persistent volumes made on it
/// (<see cref="Checkpointed"/>: kept in its registry record and sent back to it), the
/// <see cref="Total"/> those give, and what the allocator has handed out on it and not got back
/// (<see cref="Granted"/>: offers and tasks). Keeps true: the total is the configuration with every
/// checkpointed resource carved out of its source, and a checkpointed resource whose source the
/// configuration no longer holds is dropped (returned to the caller, which logs and persists).
/// Held by an <see cref="AgentEntry"/>; touched only by the master loop.
/// </summary>
public sealed class AgentResources(IReadOnlyList<Resource> configured)
{
    private IReadOnlyList<Resource> _configured = configured;
    private List<Resource> _checkpointed = [];
    private readonly ResourceBag _granted = new();

    /// <summary>The total: the configured list itself while nothing is checkpointed (shared with
    /// agents of the same shape), else a list of its own. Replaced when it changes, never mutated:
    /// the allocator holds the same list.</summary>
    public IReadOnlyList<Resource> Total { get; private set; } = configured;

    /// <summary>Dynamic reservations and persistent volumes on the agent (<c>AgentRecord.checkpointed_resources</c>).</summary>
    public IReadOnlyList<Resource> Checkpointed => _checkpointed;

    /// <summary>What the allocator has handed out on the agent and not got back (offers + tasks); read-only to callers.</summary>
    public ResourceBag Granted => _granted;

    /// <summary>A new bag of <see cref="Total"/>, the caller's to change. Built on demand: a master
    /// keeps no bag of every agent's total.</summary>
    public ResourceBag TotalBag() => new(Total);

    /// <summary>A new bag of what is neither offered nor used: the total less what is granted.</summary>
    public ResourceBag Unused()
    {
        var unused = TotalBag();
        unused.Subtract(_granted);
        return unused;
    }

    /// <summary>Takes the agent's (re-reported) configuration and, when given, the checkpointed
    /// resources to hold (restored from the registry); returns those that no longer fit.</summary>
    public IReadOnlyList<Resource> Configure(IReadOnlyList<Resource> configured, IEnumerable<Resource>? checkpointed = null)
    {
        ArgumentNullException.ThrowIfNull(configured);
        _configured = configured;
        if (checkpointed is not null)
        {
            _checkpointed = [.. checkpointed];
        }
        return Recompute();
    }

    /// <summary>Applies one operation's conversion (RESERVE, UNRESERVE, CREATE, DESTROY) to the
    /// checkpointed resources; returns any that no longer fit the configuration.</summary>
    public IReadOnlyList<Resource> Convert(IReadOnlyList<Resource> from, IReadOnlyList<Resource> to)
    {
        _checkpointed = CheckpointedResources.Convert(_checkpointed, from, to);
        return Recompute();
    }

    /// <summary>The allocator handed these out (an offer, a task the agent reported).</summary>
    public void Grant(IEnumerable<Resource> resources) => _granted.Add(resources);

    /// <summary>These came back to the allocator (a declined offer, an ended task).</summary>
    public void Release(IEnumerable<Resource> resources) => _granted.Subtract(resources);

    /// <summary>Granted resources changed shape in place (an operation on offered resources).</summary>
    public void ConvertGranted(IEnumerable<Resource> from, IEnumerable<Resource> to)
    {
        _granted.Subtract(from);
        _granted.Add(to);
    }

    /// <summary>What is granted is exactly <paramref name="uses"/> (the agent re-registered with these tasks).</summary>
    public void ResetGranted(IEnumerable<IEnumerable<Resource>> uses)
    {
        ArgumentNullException.ThrowIfNull(uses);
        _granted.Subtract(_granted.Clone());
        foreach (var use in uses)
        {
            _granted.Add(use);
        }
    }

    /// <summary>Whether a persistent volume <paramref name="id"/> of <paramref name="role"/> exists on the agent.</summary>
    public bool HoldsVolume(string id, string role) =>
        _checkpointed.Any(c => c.Disk?.Persistence?.Id == id && (c.Reservation?.Role ?? "") == role);

    /// <summary>Why <paramref name="r"/> names no dynamic reservation the agent holds: another
    /// principal's or other labels on the same role (say which, so the caller can give them), or
    /// none for the role at all. Null when the agent holds such a reservation (it may be in use).</summary>
    public string? ReservationMismatch(string agentId, Resource r, string label)
    {
        ArgumentNullException.ThrowIfNull(r);
        var sameRole = Total
            .Where(t => t.Name == r.Name && t.Disk is null && t.Reservation is { Type: Reservation.Types.Type.Dynamic } res && res.Role == r.Reservation.Role)
            .ToList();
        if (sameRole.Count == 0)
        {
            return $"{label}: agent {agentId} holds no dynamic reservation of {r.Name} for role '{r.Reservation.Role}' ('schedctl reservations' lists what it holds)";
        }
        if (sameRole.Any(t => t.Reservation.Equals(r.Reservation)))
        {
            return null;
        }
        var held = sameRole[0].Reservation;
        if (held.Principal != r.Reservation.Principal)
        {
            return $"{label}: the reservation of {r.Name} for role '{r.Reservation.Role}' on agent {agentId} was made by principal '{held.Principal}', not '{r.Reservation.Principal}'; unreserve it with --principal {(held.Principal.Length == 0 ? "''" : held.Principal)}";
        }
        return $"{label}: the reservation of {r.Name} for role '{r.Reservation.Role}' on agent {agentId} has other labels or refinements; give it as 'schedctl reservations --json' (GetAgents) shows it";
    }

    private List<Resource> Recompute()
    {
        if (_checkpointed.Count == 0)
        {
            Total = _configured;
            return [];
        }
        Total = CheckpointedResources.Apply(_configured, _checkpointed, out var applied, out var dropped);
        if (dropped.Count > 0)
        {
            _checkpointed = applied;
        }
        return dropped;
    }
}
