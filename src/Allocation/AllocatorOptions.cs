using Sched.V1;
using Scheduler.Protocol.Resources;

namespace Scheduler.Allocation;

/// <summary>Policy knobs of <see cref="HierarchicalDrfAllocator"/>.</summary>
public sealed class AllocatorOptions
{
    /// <summary>Minimum time between two allocation cycles (batching). Default 100 ms.</summary>
    public TimeSpan AllocationInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// An offer is made only if it holds at least one of these quantity sets (scalars). Default, as
    /// Mesos: <c>cpus:0.01</c> or <c>mem:32</c>. Empty: any non-empty offer. A framework's own
    /// <see cref="FrameworkSpec.MinAllocatable"/> replaces this for its roles.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<Resource>> MinAllocatable { get; init; } =
        [ResourceSet.Parse("cpus:0.01").ToList(), ResourceSet.Parse("mem:32").ToList()];

    /// <summary>The refuse period the master applies to a decline without filters (Mesos: 5 s).</summary>
    public TimeSpan DefaultRefuse { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Longer decline filters are shortened to this (Mesos caps at a year).</summary>
    public TimeSpan MaxRefuse { get; init; } = TimeSpan.FromDays(365);

    /// <summary>Resources left out of dominant-share computation (scarce ones that would dominate).</summary>
    public IReadOnlyCollection<string> FairnessExcludedResources { get; init; } = ["gpus"];

    /// <summary>Scalar resources quotas may constrain.</summary>
    public IReadOnlyCollection<string> QuotaResources { get; init; } = ["cpus", "mem", "disk", "gpus"];

    /// <summary>The order in which roles and frameworks are offered: DRF (default) or, as Mesos'
    /// <c>--role_sorter=random</c>, a weighted random order drawn at every cycle.</summary>
    public RoleSorterKind RoleSorter { get; init; } = RoleSorterKind.Drf;

    /// <summary>Throws <see cref="ArgumentException"/> naming the wrong option.</summary>
    public void Validate()
    {
        if (AllocationInterval < TimeSpan.Zero)
        {
            throw new ArgumentException($"AllocationInterval must not be negative (got {AllocationInterval}).");
        }

        if (!Enum.IsDefined(RoleSorter))
        {
            throw new ArgumentException($"RoleSorter must be Drf or Random (got {(int)RoleSorter}).");
        }

        if (MaxRefuse <= TimeSpan.Zero || DefaultRefuse < TimeSpan.Zero)
        {
            throw new ArgumentException("MaxRefuse must be positive and DefaultRefuse non-negative.");
        }

        foreach (var alternative in MinAllocatable)
        {
            var errors = ResourceValidator.Validate(alternative);
            if (errors.Count > 0)
            {
                throw new ArgumentException("MinAllocatable is invalid: " + string.Join("; ", errors));
            }

            if (alternative.Any(r => r.ValueCase != Resource.ValueOneofCase.Scalar))
            {
                throw new ArgumentException("MinAllocatable may only hold scalar resources (cpus, mem, …).");
            }
        }
    }
}
