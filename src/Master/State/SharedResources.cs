using Sched.V1;

namespace Scheduler.Master.State;

/// <summary>
/// One shared, never-mutated <see cref="Resource"/> per distinct plain scalar (name, amount,
/// allocation role): a hundred thousand tasks of <c>cpus:0.01;mem:1</c> then hold references to
/// two objects instead of two hundred thousand copies. Resources with reservations, disks, ranges
/// or sets are left as they are. Bounded: once full, new shapes are not pooled.
/// Lists made only of pooled resources are pooled too (<see cref="InternAll"/>), so a task's
/// resource list is one shared array.
/// Owned by the master loop (not thread-safe). Callers must never mutate a pooled resource or list.
/// </summary>
public sealed class SharedResources
{
    private const int Capacity = 4096;
    private readonly Dictionary<(string Name, double Scalar, string Role), Resource> _pool = [];
    private readonly Dictionary<ListKey, Resource[]> _lists = [];

    /// <summary>Interns every resource of <paramref name="resources"/> in place (see
    /// <see cref="Intern(Resource, string)"/>) and returns the list as an array shared with every earlier list of
    /// the same pooled resources, or a new array when some resource is not pooled.</summary>
    public IReadOnlyList<Resource> InternAll(IList<Resource> resources, string role)
    {
        ArgumentNullException.ThrowIfNull(resources);
        var all = new Resource[resources.Count];
        var pooled = true;
        for (var i = 0; i < all.Length; i++)
        {
            all[i] = resources[i] = Intern(resources[i], role, out var isPooled);
            pooled &= isPooled;
        }
        if (!pooled)
        {
            return all;
        }
        var key = new ListKey(all);
        if (_lists.TryGetValue(key, out var shared))
        {
            return shared;
        }
        if (_lists.Count < Capacity)
        {
            _lists[key] = all;
        }
        return all;
    }

    /// <summary>A list of pooled resources, equal to another when it holds the same instances in the same order.</summary>
    private readonly struct ListKey(Resource[] items) : IEquatable<ListKey>
    {
        private readonly Resource[] _items = items;

        public bool Equals(ListKey other)
        {
            if (_items.Length != other._items.Length)
            {
                return false;
            }
            for (var i = 0; i < _items.Length; i++)
            {
                if (!ReferenceEquals(_items[i], other._items[i]))
                {
                    return false;
                }
            }
            return true;
        }

        public override bool Equals(object? obj) => obj is ListKey other && Equals(other);

        public override int GetHashCode()
        {
            var hash = new HashCode();
            foreach (var item in _items)
            {
                hash.Add(System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(item));
            }
            return hash.ToHashCode();
        }
    }

    /// <summary>Returns <paramref name="resource"/> with its allocation role set to
    /// <paramref name="role"/>: the pooled instance when one matches exactly, else the
    /// resource itself (updated in place).</summary>
    public Resource Intern(Resource resource, string role) => Intern(resource, role, out _);

    /// <summary><see cref="Intern(Resource, string)"/>, saying whether the result is the pool's instance.</summary>
    private Resource Intern(Resource resource, string role, out bool pooled)
    {
        ArgumentNullException.ThrowIfNull(resource);
        resource.AllocationRole = role;
        pooled = false;
        if (resource.ValueCase != Resource.ValueOneofCase.Scalar || resource.Reservation is not null || resource.Disk is not null)
        {
            return resource;
        }
        var key = (resource.Name, resource.Scalar, role);
        if (_pool.TryGetValue(key, out var shared))
        {
            pooled = ReferenceEquals(shared, resource) || shared.Equals(resource);
            return pooled ? shared : resource;
        }
        if (_pool.Count < Capacity)
        {
            _pool[key] = resource;
            pooled = true;
        }
        return resource;
    }
}
