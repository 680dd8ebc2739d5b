using Sched.V1;

namespace Scheduler.Master.State;

/// <summary>
/// One shared, never-mutated <see cref="Resource"/> per distinct plain scalar (name, amount,
/// allocation role): a hundred thousand tasks of <c>cpus:0.01;mem:1</c> then hold references to
/// two objects instead of two hundred thousand copies. Resources with reservations, disks, ranges
/// or sets are left as they are. Bounded: once full, new shapes are not pooled.
/// Owned by the master loop (not thread-safe). Callers must never mutate a pooled resource.
/// </summary>
public sealed class SharedResources
{
    private const int Capacity = 4096;
    private readonly Dictionary<(string Name, double Scalar, string Role), Resource> _pool = [];

    /// <summary>Returns <paramref name="resource"/> with its allocation role set to
    /// <paramref name="role"/>: the pooled instance when one matches exactly, else the
    /// resource itself (updated in place).</summary>
    public Resource Intern(Resource resource, string role)
    {
        ArgumentNullException.ThrowIfNull(resource);
        resource.AllocationRole = role;
        if (resource.ValueCase != Resource.ValueOneofCase.Scalar || resource.Reservation is not null || resource.Disk is not null)
        {
            return resource;
        }
        var key = (resource.Name, resource.Scalar, role);
        if (_pool.TryGetValue(key, out var shared))
        {
            return shared.Equals(resource) ? shared : resource;
        }
        if (_pool.Count < Capacity)
        {
            _pool[key] = resource;
        }
        return resource;
    }
}
