using Sched.V1;
using Scheduler.Allocation.Sorting;
using Scheduler.Protocol.Resources;

namespace Scheduler.Allocation.Internal;

/// <summary>One quantity of a bag: a scalar (milli-units), ranges or set, for one (pool, name).</summary>
internal struct Cell
{
    public int Pool;
    public int Name;
    public long Milli;

    /// <summary>A <see cref="RangeSet"/>, an <see cref="ItemSet"/>, or null for a scalar: one field keeps the cell at 24 bytes.</summary>
    private object? _value;

    public RangeSet? Ranges
    {
        readonly get => _value as RangeSet;
        set => _value = value;
    }

    public ItemSet? Items
    {
        readonly get => _value as ItemSet;
        set => _value = value;
    }

    public readonly bool IsEmpty => Ranges is not null ? Ranges.IsEmpty : Items is not null ? Items.IsEmpty : Milli <= 0;

    public readonly bool IsScalar => _value is null;
}

/// <summary>
/// The allocator's compact, mutable resource bag: a few cells sorted by (pool, name). Agents hold
/// three or four cells typically, so linear scans beat any map. Never holds empty cells. A packed
/// form of the protocol's algebra: scalars in <see cref="FixedScalar"/> milli-units, ranges as
/// <see cref="RangeSet"/>, sets as <see cref="ItemSet"/>, pools keyed by <see cref="ResourceIdentity"/>.
/// </summary>
internal class Bag
{
    private Cell[] _cells;
    private int _count;

    public Bag(int capacity = 4) => _cells = capacity == 0 ? [] : new Cell[capacity];

    public int Count => _count;

    public bool IsEmpty => _count == 0;

    public ref Cell this[int index] => ref _cells[index];

    public Bag Clone()
    {
        var b = new Bag(_count);
        Array.Copy(_cells, b._cells, _count);
        b._count = _count;
        return b;
    }

    public void Clear() => _count = 0;

    private int Find(int pool, int name, out bool found)
    {
        for (var i = 0; i < _count; i++)
        {
            ref var c = ref _cells[i];
            if (c.Pool == pool && c.Name == name)
            {
                found = true;
                return i;
            }

            if (c.Pool > pool || (c.Pool == pool && c.Name > name))
            {
                found = false;
                return i;
            }
        }

        found = false;
        return _count;
    }

    private void InsertAt(int index, in Cell cell)
    {
        if (_count == _cells.Length)
        {
            Array.Resize(ref _cells, Math.Max(4, _count * 2));
        }

        Array.Copy(_cells, index, _cells, index + 1, _count - index);
        _cells[index] = cell;
        _count++;
    }

    private void RemoveAt(int index)
    {
        _count--;
        Array.Copy(_cells, index + 1, _cells, index, _count - index);
        _cells[_count] = default;
    }

    /// <summary>Adds a cell (union for ranges and sets).</summary>
    public void Add(in Cell cell)
    {
        if (cell.IsEmpty)
        {
            return;
        }

        var i = Find(cell.Pool, cell.Name, out var found);
        if (!found)
        {
            InsertAt(i, cell);
            return;
        }

        ref var mine = ref _cells[i];
        if (cell.Ranges is not null)
        {
            mine.Ranges = (mine.Ranges ?? RangeSet.Empty).Union(cell.Ranges);
        }
        else if (cell.Items is not null)
        {
            mine.Items = (mine.Items ?? ItemSet.Empty).Union(cell.Items);
        }
        else
        {
            mine.Milli = checked(mine.Milli + cell.Milli);
        }
    }

    public void AddAll(Bag other)
    {
        for (var i = 0; i < other._count; i++)
        {
            Add(other._cells[i]);
        }
    }

    /// <summary>Removes as much of <paramref name="cell"/> as this bag has; returns what was removed.</summary>
    public Cell Take(in Cell cell)
    {
        var taken = new Cell { Pool = cell.Pool, Name = cell.Name };
        var i = Find(cell.Pool, cell.Name, out var found);
        if (!found)
        {
            if (cell.Ranges is not null)
            {
                taken.Ranges = RangeSet.Empty;
            }
            else if (cell.Items is not null)
            {
                taken.Items = ItemSet.Empty;
            }

            return taken;
        }

        ref var mine = ref _cells[i];
        if (cell.Ranges is not null)
        {
            var have = mine.Ranges ?? RangeSet.Empty;
            var rest = have.Subtract(cell.Ranges);
            taken.Ranges = have.Subtract(rest);
            mine.Ranges = rest;
        }
        else if (cell.Items is not null)
        {
            var have = mine.Items ?? ItemSet.Empty;
            taken.Items = have.Intersect(cell.Items);
            mine.Items = have.Subtract(cell.Items);
        }
        else
        {
            var amount = Math.Min(mine.Milli, Math.Max(0, cell.Milli));
            taken.Milli = amount;
            mine.Milli -= amount;
        }

        if (mine.IsEmpty)
        {
            RemoveAt(i);
        }

        return taken;
    }

    /// <summary>Removes what it can of every cell of <paramref name="other"/>; returns what was removed.</summary>
    public Bag TakeAll(Bag other)
    {
        var taken = new Bag(other._count);
        for (var i = 0; i < other._count; i++)
        {
            taken.Add(Take(other._cells[i]));
        }

        return taken;
    }

    /// <summary>Removes what it can of every cell of <paramref name="other"/> (no record of what).</summary>
    public void RemoveAll(Bag other)
    {
        for (var i = 0; i < other._count; i++)
        {
            ref var cell = ref other._cells[i];
            var j = Find(cell.Pool, cell.Name, out var found);
            if (!found)
            {
                continue;
            }

            ref var mine = ref _cells[j];
            if (cell.Ranges is not null)
            {
                mine.Ranges = (mine.Ranges ?? RangeSet.Empty).Subtract(cell.Ranges);
            }
            else if (cell.Items is not null)
            {
                mine.Items = (mine.Items ?? ItemSet.Empty).Subtract(cell.Items);
            }
            else
            {
                mine.Milli = Math.Max(0, mine.Milli - cell.Milli);
            }

            if (mine.IsEmpty)
            {
                RemoveAt(j);
            }
        }
    }

    /// <summary>Whether every cell of <paramref name="other"/> is covered here.</summary>
    public bool Contains(Bag other)
    {
        for (var j = 0; j < other._count; j++)
        {
            ref var want = ref other._cells[j];
            var i = Find(want.Pool, want.Name, out var found);
            if (!found)
            {
                return false;
            }

            ref var have = ref _cells[i];
            if (want.Ranges is not null)
            {
                if (have.Ranges is null || !have.Ranges.Contains(want.Ranges))
                {
                    return false;
                }
            }
            else if (want.Items is not null)
            {
                if (have.Items is null || !have.Items.Contains(want.Items))
                {
                    return false;
                }
            }
            else if (have.Milli < want.Milli)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Adds <paramref name="sign"/> × scalar quantities by name into <paramref name="vector"/> (grown as needed).</summary>
    public void AccumulateScalars(ref long[] vector, int sign, bool unreservedOnly, PoolTable pools)
    {
        for (var i = 0; i < _count; i++)
        {
            ref var c = ref _cells[i];
            if (!c.IsScalar || (unreservedOnly && !pools[c.Pool].IsUnreserved))
            {
                continue;
            }

            Vec.Add(ref vector, c.Name, sign * c.Milli);
        }
    }

    public long Scalar(int name)
    {
        long total = 0;
        for (var i = 0; i < _count; i++)
        {
            if (_cells[i].Name == name && _cells[i].IsScalar)
            {
                total += _cells[i].Milli;
            }
        }

        return total;
    }

    public bool HasScalar(int name)
    {
        for (var i = 0; i < _count; i++)
        {
            if (_cells[i].Name == name && _cells[i].IsScalar && _cells[i].Milli > 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Converts proto resources, interning names and pools.</summary>
    /// <exception cref="ArgumentException">Invalid resources (the message lists each problem).</exception>
    public static Bag FromProto(IEnumerable<Resource> resources, NameTable names, PoolTable pools, Func<string, RoleNode> roleOf)
    {
        var list = resources as IReadOnlyCollection<Resource> ?? resources.ToList();
        var errors = ResourceValidator.Validate(list);
        if (errors.Count > 0)
        {
            throw new ArgumentException("Invalid resources: " + string.Join("; ", errors), nameof(resources));
        }

        var bag = new Bag(list.Count);
        foreach (var r in list)
        {
            var pool = pools.Intern(r.Reservation, r.Disk, roleOf);
            var cell = new Cell { Pool = pool.Index };
            switch (r.ValueCase)
            {
                case Resource.ValueOneofCase.Scalar:
                    cell.Name = names.Intern(r.Name, CellKind.Scalar);
                    cell.Milli = FixedScalar.ToFixed(r.Scalar);
                    break;
                case Resource.ValueOneofCase.Ranges:
                    cell.Name = names.Intern(r.Name, CellKind.Ranges);
                    cell.Ranges = RangeSet.FromProto(r.Ranges);
                    break;
                default:
                    cell.Name = names.Intern(r.Name, CellKind.Set);
                    cell.Items = ItemSet.FromProto(r.Set);
                    break;
            }

            bag.Add(cell);
        }

        return bag;
    }

    /// <summary>Fresh proto resources, each marked with <paramref name="allocationRole"/> (null: none).</summary>
    public List<Resource> ToProto(NameTable names, PoolTable pools, string? allocationRole)
    {
        var list = new List<Resource>(_count);
        for (var i = 0; i < _count; i++)
        {
            ref var c = ref _cells[i];
            var pool = pools[c.Pool];
            var r = new Resource { Name = names[c.Name] };
            if (allocationRole is not null)
            {
                r.AllocationRole = allocationRole;
            }

            if (pool.Reservation is not null)
            {
                r.Reservation = pool.Reservation.Clone();
            }

            if (pool.Disk is not null)
            {
                r.Disk = pool.Disk.Clone();
            }

            if (c.Ranges is not null)
            {
                r.Ranges = c.Ranges.ToProto();
            }
            else if (c.Items is not null)
            {
                r.Set = c.Items.ToProto();
            }
            else
            {
                r.Scalar = FixedScalar.ToDouble(c.Milli);
            }

            list.Add(r);
        }

        return list;
    }
}

/// <summary>Helpers for scalar vectors indexed by <see cref="NameTable"/> (missing tail = 0).</summary>
internal static class Vec
{
    public static long Get(long[] v, int i) => i < v.Length ? v[i] : 0;

    public static void Add(ref long[] v, int i, long delta)
    {
        if (delta == 0)
        {
            return;
        }

        if (i >= v.Length)
        {
            Array.Resize(ref v, Math.Max(i + 1, 4));
        }

        v[i] += delta;
    }

    public static List<Resource> ToProto(long[] v, NameTable names, bool skipZero = true)
    {
        var list = new List<Resource>();
        for (var i = 0; i < v.Length && i < names.Count; i++)
        {
            if (names.Kind(i) == CellKind.Scalar && (!skipZero || v[i] != 0))
            {
                list.Add(new Resource { Name = names[i], Scalar = FixedScalar.ToDouble(v[i]) });
            }
        }

        return list;
    }
}
