using System.Globalization;
using System.Text;
using Sched.V1;

namespace Scheduler.Master.State;

/// <summary>
/// A mutable multiset of resources keyed by name and identity: the whole reservation (type, role,
/// principal, labels, refinement) and the persistent volume, if any (allocation roles are
/// ignored: one bag tracks one agent or one offer). Scalars add up, ranges and sets unite.
/// The master's own accounting; values are validated (finite, non-negative) before they get here.
/// </summary>
public sealed class ResourceBag
{
    private const double Epsilon = 1e-6;
    // A few entries per bag (cpus, mem, disk, ports, a reservation or two): a linear scan of a
    // small array beats a dictionary and costs a third of its memory (the master keeps a bag of
    // what is granted on every agent).
    private Slot[] _slots = [];
    private int _count;

    public ResourceBag()
    {
    }

    public ResourceBag(IEnumerable<Resource> resources)
    {
        if (resources.TryGetNonEnumeratedCount(out var count) && count > 0)
        {
            _slots = new Slot[count];
        }
        Add(resources);
    }

    public bool IsEmpty
    {
        get
        {
            foreach (var (_, e) in Slots)
            {
                if (!e.IsEmpty)
                {
                    return false;
                }
            }
            return true;
        }
    }

    private ReadOnlySpan<Slot> Slots => _slots.AsSpan(0, _count);

    public ResourceBag Clone()
    {
        var copy = new ResourceBag { _slots = new Slot[_count], _count = _count };
        for (var i = 0; i < _count; i++)
        {
            copy._slots[i] = new Slot(_slots[i].Key, _slots[i].Entry.Clone());
        }
        return copy;
    }

    public void Add(IEnumerable<Resource> resources)
    {
        foreach (var r in resources)
        {
            Get(Key(r)).Add(r);
        }
    }

    public void Add(ResourceBag other)
    {
        foreach (var (k, e) in other.Slots)
        {
            Get(k).Add(e);
        }
    }

    /// <summary>Removes what is present; parts not present are ignored.</summary>
    public void Subtract(IEnumerable<Resource> resources)
    {
        foreach (var r in resources)
        {
            if (TryGetValue(Key(r), out var e))
            {
                e.Subtract(r);
            }
        }
    }

    public void Subtract(ResourceBag other)
    {
        foreach (var (k, e) in other.Slots)
        {
            if (TryGetValue(k, out var mine))
            {
                mine.Subtract(e);
            }
        }
    }

    /// <summary>Null when <paramref name="resources"/> fit in this bag, else a description of the first shortfall.</summary>
    public string? FindShortfall(IEnumerable<Resource> resources)
    {
        var need = new ResourceBag(resources);
        foreach (var (k, e) in need.Slots)
        {
            TryGetValue(k, out var have);
            var missing = e.Missing(have);
            if (missing is not null)
            {
                return $"{Label(e, k.Name)}: {missing}";
            }
        }
        return null;
    }

    public bool Contains(IEnumerable<Resource> resources) => FindShortfall(resources) is null;

    /// <summary>The bag as resources, each tagged with <paramref name="allocationRole"/> when given.</summary>
    public List<Resource> ToResources(string? allocationRole = null)
    {
        var list = new List<Resource>();
        foreach (var (k, e) in Slots.ToArray().OrderBy(p => p.Key.Name, StringComparer.Ordinal).ThenBy(p => p.Key.Reservation, StringComparer.Ordinal))
        {
            var r = e.ToResource(k.Name);
            if (r is null)
            {
                continue;
            }
            r.Reservation = e.Reservation?.Clone();
            r.Disk = e.Disk?.Clone();
            if (allocationRole is not null)
            {
                r.AllocationRole = allocationRole;
            }
            list.Add(r);
        }
        return list;
    }

    /// <summary>Compares scalar totals, range and set contents (for invariant checks).</summary>
    public bool SameAs(ResourceBag other) => FindShortfallBag(this, other) is null && FindShortfallBag(other, this) is null;

    public override string ToString()
    {
        var sb = new StringBuilder();
        foreach (var r in ToResources())
        {
            if (sb.Length > 0)
            {
                sb.Append(';');
            }
            sb.Append(Format(r));
        }
        return sb.ToString();
    }

    public static string Format(Resource r) => r.ValueCase switch
    {
        Resource.ValueOneofCase.Scalar => $"{r.Name}:{r.Scalar.ToString("0.###", CultureInfo.InvariantCulture)}",
        Resource.ValueOneofCase.Ranges => $"{r.Name}:[{string.Join(',', r.Ranges.Range.Select(x => $"{x.Begin}-{x.End}"))}]",
        Resource.ValueOneofCase.Set => $"{r.Name}:{{{string.Join(',', r.Set.Items)}}}",
        _ => r.Name,
    };

    private static string? FindShortfallBag(ResourceBag have, ResourceBag need) => have.FindShortfall(need.ToResources());

    private static (string, string) Key(Resource r) =>
        (r.Name, r.Reservation is null && r.Disk is null ? "" : ReservationKey(r.Reservation) + "\u0001" + (r.Disk is null ? "" : r.Disk.ToString()));

    /// <summary>A canonical text for a reservation (labels sorted, refinement chain included).</summary>
    private static string ReservationKey(Reservation? r)
    {
        if (r is null)
        {
            return "";
        }
        var labels = string.Join(',', r.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value));
        return $"{(int)r.Type}:{r.Role}:{r.Principal}:{labels}<{ReservationKey(r.RefinedFrom)}";
    }

    private static string Label(Entry e, string name)
    {
        var label = e.Reservation is null ? name : $"{name}({e.Reservation.Role})";
        return e.Disk?.Persistence is { Id.Length: > 0 } p ? $"{label}[volume {p.Id}]" : label;
    }

    private bool TryGetValue((string Name, string Reservation) key, out Entry entry)
    {
        foreach (var slot in Slots)
        {
            if (string.Equals(slot.Key.Name, key.Name, StringComparison.Ordinal) && string.Equals(slot.Key.Reservation, key.Reservation, StringComparison.Ordinal))
            {
                entry = slot.Entry;
                return true;
            }
        }
        entry = null!;
        return false;
    }

    private Entry Get((string Name, string Reservation) key)
    {
        if (!TryGetValue(key, out var e))
        {
            e = new Entry();
            if (_count == _slots.Length)
            {
                Array.Resize(ref _slots, Math.Max(4, _count * 2));
            }
            _slots[_count++] = new Slot(key, e);
        }
        return e;
    }

    private readonly record struct Slot((string Name, string Reservation) Key, Entry Entry);

    private sealed class Entry
    {
        // Ranges, sets, reservations and volumes are rare (ports, GPUs, reserved resources): they
        // live in a side object allocated on first use, so an entry of an unreserved scalar
        // (cpus, mem, disk; most of what a master holds) is 40 bytes.
        private static readonly List<(ulong Begin, ulong End)> NoRanges = [];
        private static readonly SortedSet<string> NoItems = new(StringComparer.Ordinal);
        private static readonly Extra None = new();
        private double _scalar;
        private bool _hasScalar;
        private Extra _extra = None;

        public Reservation? Reservation
        {
            get => _extra.Reservation;
            private set
            {
                if (value is not null || _extra != None)
                {
                    Own.Reservation = value;
                }
            }
        }

        public DiskInfo? Disk
        {
            get => _extra.Disk;
            private set
            {
                if (value is not null || _extra != None)
                {
                    Own.Disk = value;
                }
            }
        }

        public bool IsEmpty => (!_hasScalar || _scalar < Epsilon) && RangeList.Count == 0 && ItemSet.Count == 0;

        /// <summary>The side object, this entry's own (the shared empty one is never written).</summary>
        private Extra Own => _extra == None ? _extra = new Extra() : _extra;

        private List<(ulong Begin, ulong End)> RangeList
        {
            get => _extra.Ranges;
            set
            {
                if (value.Count > 0 || _extra != None)
                {
                    Own.Ranges = value.Count == 0 ? NoRanges : value;
                }
            }
        }

        private SortedSet<string> ItemSet => _extra.Set;

        private SortedSet<string> Items => ItemSet == NoItems ? Own.Set = new SortedSet<string>(StringComparer.Ordinal) : ItemSet;

        public Entry Clone()
        {
            var e = new Entry { _scalar = _scalar, _hasScalar = _hasScalar, Reservation = Reservation, Disk = Disk };
            if (RangeList.Count > 0)
            {
                e.RangeList = [.. RangeList];
            }
            if (ItemSet.Count > 0)
            {
                e.Items.UnionWith(ItemSet);
            }
            return e;
        }

        public void Add(Resource r)
        {
            Reservation ??= r.Reservation;
            Disk ??= r.Disk;
            switch (r.ValueCase)
            {
                case Resource.ValueOneofCase.Scalar:
                    _hasScalar = true;
                    _scalar = Math.Round(_scalar + r.Scalar, 3);
                    break;
                case Resource.ValueOneofCase.Ranges:
                    var ranges = new List<(ulong Begin, ulong End)>(RangeList);
                    foreach (var x in r.Ranges.Range)
                    {
                        ranges.Add((Math.Min(x.Begin, x.End), Math.Max(x.Begin, x.End)));
                    }
                    RangeList = Normalize(ranges);
                    break;
                case Resource.ValueOneofCase.Set:
                    Items.UnionWith(r.Set.Items);
                    break;
                default:
                    break;
            }
        }

        public void Add(Entry other)
        {
            Reservation ??= other.Reservation;
            Disk ??= other.Disk;
            if (other._hasScalar)
            {
                _hasScalar = true;
                _scalar = Math.Round(_scalar + other._scalar, 3);
            }
            if (other.RangeList.Count > 0)
            {
                RangeList = Normalize([.. RangeList, .. other.RangeList]);
            }
            if (other.ItemSet.Count > 0)
            {
                Items.UnionWith(other.ItemSet);
            }
        }

        public void Subtract(Resource r)
        {
            switch (r.ValueCase)
            {
                case Resource.ValueOneofCase.Scalar:
                    _scalar = Math.Max(0, Math.Round(_scalar - r.Scalar, 3));
                    break;
                case Resource.ValueOneofCase.Ranges:
                    foreach (var x in r.Ranges.Range)
                    {
                        RangeList = Cut(RangeList, Math.Min(x.Begin, x.End), Math.Max(x.Begin, x.End));
                    }
                    break;
                case Resource.ValueOneofCase.Set:
                    if (ItemSet.Count > 0)
                    {
                        ItemSet.ExceptWith(r.Set.Items);
                    }
                    break;
                default:
                    break;
            }
        }

        public void Subtract(Entry other)
        {
            if (other._hasScalar)
            {
                _scalar = Math.Max(0, Math.Round(_scalar - other._scalar, 3));
            }
            foreach (var (b, e) in other.RangeList)
            {
                RangeList = Cut(RangeList, b, e);
            }
            if (ItemSet.Count > 0 && other.ItemSet.Count > 0)
            {
                ItemSet.ExceptWith(other.ItemSet);
            }
        }

        public string? Missing(Entry? have)
        {
            if (_hasScalar && _scalar > Epsilon)
            {
                var h = have?._scalar ?? 0;
                if (_scalar > h + Epsilon)
                {
                    return $"needs {_scalar.ToString("0.###", CultureInfo.InvariantCulture)}, only {h.ToString("0.###", CultureInfo.InvariantCulture)} offered";
                }
            }
            foreach (var (b, e) in RangeList)
            {
                if (have is null || !have.RangeList.Any(x => x.Begin <= b && e <= x.End))
                {
                    return $"range [{b}-{e}] is not offered";
                }
            }
            foreach (var item in ItemSet)
            {
                if (have is null || !have.ItemSet.Contains(item))
                {
                    return $"item '{item}' is not offered";
                }
            }
            return null;
        }

        public Resource? ToResource(string name)
        {
            if (RangeList.Count > 0)
            {
                var rs = new Ranges();
                rs.Range.AddRange(RangeList.Select(x => new Sched.V1.Range { Begin = x.Begin, End = x.End }));
                return new Resource { Name = name, Ranges = rs };
            }
            if (ItemSet.Count > 0)
            {
                var s = new ValueSet();
                s.Items.AddRange(ItemSet);
                return new Resource { Name = name, Set = s };
            }
            if (_hasScalar && _scalar > Epsilon)
            {
                return new Resource { Name = name, Scalar = _scalar };
            }
            return null;
        }

        private static List<(ulong Begin, ulong End)> Normalize(List<(ulong Begin, ulong End)> ranges)
        {
            ranges.Sort();
            var result = new List<(ulong Begin, ulong End)>();
            foreach (var r in ranges)
            {
                if (result.Count > 0 && r.Begin <= result[^1].End + 1)
                {
                    result[^1] = (result[^1].Begin, Math.Max(result[^1].End, r.End));
                }
                else
                {
                    result.Add(r);
                }
            }
            return result;
        }

        private static List<(ulong Begin, ulong End)> Cut(List<(ulong Begin, ulong End)> ranges, ulong b, ulong e)
        {
            var result = new List<(ulong Begin, ulong End)>();
            foreach (var r in ranges)
            {
                if (r.End < b || r.Begin > e)
                {
                    result.Add(r);
                    continue;
                }
                if (r.Begin < b)
                {
                    result.Add((r.Begin, b - 1));
                }
                if (r.End > e)
                {
                    result.Add((e + 1, r.End));
                }
            }
            return result;
        }

        private sealed class Extra
        {
            public List<(ulong Begin, ulong End)> Ranges { get; set; } = NoRanges;

            public SortedSet<string> Set { get; set; } = NoItems;

            public Reservation? Reservation { get; set; }

            public DiskInfo? Disk { get; set; }
        }
    }
}
