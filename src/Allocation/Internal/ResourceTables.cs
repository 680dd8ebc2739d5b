using Sched.V1;
using Scheduler.Allocation.Sorting;
using Scheduler.Protocol.Resources;

namespace Scheduler.Allocation.Internal;

/// <summary>Value type a resource name carries everywhere (fixed at its first appearance).</summary>
internal enum CellKind : byte
{
    Scalar,
    Ranges,
    Set,
}

/// <summary>Interns resource names to small indices so quantities live in <c>long[]</c> vectors.</summary>
internal sealed class NameTable
{
    private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);
    private readonly List<string> _names = [];
    private readonly List<CellKind> _kinds = [];

    public int Count => _names.Count;

    public string this[int index] => _names[index];

    public CellKind Kind(int index) => _kinds[index];

    public int Find(string name) => _index.TryGetValue(name, out var i) ? i : -1;

    /// <exception cref="ArgumentException">The name was seen before with another value type.</exception>
    public int Intern(string name, CellKind kind)
    {
        if (_index.TryGetValue(name, out var i))
        {
            if (_kinds[i] != kind)
            {
                throw new ArgumentException($"Resource '{name}' is {_kinds[i].ToString().ToLowerInvariant()} elsewhere in the cluster but {kind.ToString().ToLowerInvariant()} here; a resource name has one value type.");
            }

            return i;
        }

        i = _names.Count;
        _index.Add(name, i);
        _names.Add(name);
        _kinds.Add(kind);
        return i;
    }
}

/// <summary>
/// A pool: resources sharing one identity apart from name and value — unreserved, or reserved for
/// one role with one reservation (type, principal, labels), optionally with disk info.
/// </summary>
internal sealed class Pool
{
    public Pool(int index, string key, Reservation? reservation, DiskInfo? disk, RoleNode? role)
    {
        Index = index;
        Key = key;
        Reservation = reservation;
        Disk = disk;
        Role = role;
    }

    public int Index { get; }

    /// <summary>The pool's identity (<see cref="ResourceIdentity.Key(Reservation?, DiskInfo?)"/>).</summary>
    public string Key { get; }

    public Reservation? Reservation { get; }

    public DiskInfo? Disk { get; }

    /// <summary>The reservation's role; null for unreserved resources.</summary>
    public RoleNode? Role { get; }

    public bool IsUnreserved => Role is null;

    /// <summary>Cells of agent totals in this pool (kept by the allocator's total accounting).</summary>
    public int TotalRefs { get; set; }
}

/// <summary>
/// Interns pools. Pool 0 is "unreserved, no disk info" and stays; any other pool is released once
/// no agent total and no holding has resources in it (<see cref="Release"/>), and its index is
/// reused, so the table follows the reservations that exist rather than all that ever did.
/// </summary>
internal sealed class PoolTable
{
    private readonly Dictionary<string, Pool> _byKey = new(StringComparer.Ordinal);
    private readonly List<Pool?> _pools = [];
    private readonly Stack<int> _freeIndices = new();

    public PoolTable()
    {
        var unreserved = new Pool(0, "", null, null, null);
        _pools.Add(unreserved);
        _byKey.Add("", unreserved);
    }

    public Pool this[int index] => _pools[index] ?? throw new InvalidOperationException($"Pool {index} was released while resources still named it.");

    /// <summary>Pools in the table (the unreserved one included).</summary>
    public int Count => _byKey.Count;

    /// <summary>Pools that may hold nothing any more: new ones, and ones whose last agent-total
    /// cell went. <see cref="Release"/> decides.</summary>
    public HashSet<Pool> Candidates { get; } = [];

    public Pool Intern(Reservation? reservation, DiskInfo? disk, Func<string, RoleNode> roleOf)
    {
        if (reservation is null && disk is null)
        {
            return _pools[0]!;
        }

        var key = ResourceIdentity.Key(reservation, disk);
        if (!_byKey.TryGetValue(key, out var pool))
        {
            var index = _freeIndices.Count > 0 ? _freeIndices.Pop() : _pools.Count;
            pool = new Pool(index, key, reservation?.Clone(), disk?.Clone(), reservation is null ? null : roleOf(reservation.Role));
            if (pool.Role is { } role)
            {
                role.PoolRefs++;
            }

            if (index == _pools.Count)
            {
                _pools.Add(pool);
            }
            else
            {
                _pools[index] = pool;
            }

            _byKey.Add(key, pool);
            Candidates.Add(pool);
        }

        return pool;
    }

    /// <summary>Forgets <paramref name="pool"/> (nothing may name it any more); returns the role
    /// whose reference it dropped, if any.</summary>
    public RoleNode? Release(Pool pool)
    {
        if (pool.Index == 0 || !ReferenceEquals(_pools[pool.Index], pool))
        {
            return null;
        }

        _pools[pool.Index] = null;
        _byKey.Remove(pool.Key);
        _freeIndices.Push(pool.Index);
        Candidates.Remove(pool);
        if (pool.Role is { } role)
        {
            role.PoolRefs--;
        }

        return pool.Role;
    }
}
