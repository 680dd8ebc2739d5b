namespace Scheduler.Allocation;

/// <summary>How the allocator orders roles and frameworks.</summary>
public enum RoleSorterKind
{
    /// <summary>Hierarchical Dominant Resource Fairness (weighted).</summary>
    Drf,

    /// <summary>A weighted random order, drawn again at every cycle.</summary>
    Random,
}
