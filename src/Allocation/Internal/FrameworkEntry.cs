using Sched.V1;
using Scheduler.Allocation.Sorting;

namespace Scheduler.Allocation.Internal;

/// <summary>A framework: its spec, clients (one per role), activity and filter count.</summary>
internal sealed class FrameworkEntry
{
    public FrameworkEntry(int index, FrameworkSpec spec)
    {
        Index = index;
        Spec = spec;
    }

    public int Index { get; }

    public string Id => Spec.FrameworkId;

    public FrameworkSpec Spec { get; set; }

    public bool Active { get; set; } = true;

    /// <summary>Known only from tasks agents reported; the framework has not (re)subscribed yet.</summary>
    public bool Placeholder { get; set; }

    public bool GpuCapable { get; set; }

    public Dictionary<string, ClientNode> Clients { get; } = new(StringComparer.Ordinal);

    /// <summary>Agents on which this framework has a decline filter (possibly expired).</summary>
    public int FilterCount { get; set; }

    /// <summary>Constraints by role ("" = every role).</summary>
    public IReadOnlyList<OfferConstraint> Constraints { get; set; } = [];

    /// <summary>Minimum allocatable alternatives per role; null entry → global default.</summary>
    public Dictionary<string, long[][]> MinAllocatableByRole { get; } = new(StringComparer.Ordinal);

    public long[][]? MinAllocatableAllRoles { get; set; }
}
