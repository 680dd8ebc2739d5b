using System.Text;
using Sched.V1;
using Scheduler.Protocol.Resources;

namespace Scheduler.Master.State;

/// <summary>
/// A mutable multiset of resources keyed by name and identity: the whole reservation (type, role,
/// principal, labels, refinement) and the persistent volume, if any (allocation roles are
/// ignored: one bag tracks one agent or one offer). Scalars add up, ranges and sets unite.
/// The master's own accounting, on the protocol's exact arithmetic: scalars in fixed-point
/// milli-units (<see cref="FixedScalar"/>), ranges as <see cref="RangeSet"/>, sets as
/// <see cref="ItemSet"/>, identities by <see cref="ResourceIdentity"/>. Values are validated
/// (finite, non-negative) before they get here.
/// </summary>
public sealed class ResourceBag
{
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
    public string? FindShortfall(IEnumerable<Resource> resources) => FindShortfall(new ResourceBag(resources));

    private string? FindShortfall(ResourceBag need)
    {
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
        foreach (var (k, e) in Slots.ToArray().OrderBy(p => p.Key.Name, StringComparer.Ordinal).ThenBy(p => p.Key.Identity, StringComparer.Ordinal))
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
    public bool SameAs(ResourceBag other) => FindShortfall(other) is null && other.FindShortfall(this) is null;

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
        Resource.ValueOneofCase.Scalar => $"{r.Name}:{FixedScalar.Format(FixedScalar.ToFixed(r.Scalar))}",
        Resource.ValueOneofCase.Ranges => $"{r.Name}:[{string.Join(',', r.Ranges.Range.Select(x => $"{x.Begin}-{x.End}"))}]",
        Resource.ValueOneofCase.Set => $"{r.Name}:{{{string.Join(',', r.Set.Items)}}}",
        _ => r.Name,
    };

    private static (string, string) Key(Resource r) => (r.Name, ResourceIdentity.Key(r.Reservation, r.Disk));

    private static string Label(Entry e, string name)
    {
        var label = e.Reservation is null ? name : $"{name}({e.Reservation.Role})";
        return e.Disk?.Persistence is { Id.Length: > 0 } p ? $"{label}[volume {p.Id}]" : label;
    }

    private bool TryGetValue((string Name, string Identity) key, out Entry entry)
    {
        foreach (var slot in Slots)
        {
            if (string.Equals(slot.Key.Name, key.Name, StringComparison.Ordinal) && string.Equals(slot.Key.Identity, key.Identity, StringComparison.Ordinal))
            {
                entry = slot.Entry;
                return true;
            }
        }
        entry = null!;
        return false;
    }

    private Entry Get((string Name, string Identity) key)
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

    private readonly record struct Slot((string Name, string Identity) Key, Entry Entry);

    /// <summary>One (name, identity) of the bag: a fixed-point scalar, ranges and items.</summary>
    private sealed class Entry
    {
        // Ranges, sets, reservations and volumes are rare (ports, GPUs, reserved resources): they
        // live in a side object allocated on first use, so an entry of an unreserved scalar
        // (cpus, mem, disk; most of what a master holds) is 40 bytes.
        private static readonly Extra None = new();
        private long _milli;
        private bool _hasScalar;
        private Extra _extra = None;

        public Reservation? Reservation => _extra.Reservation;

        public DiskInfo? Disk => _extra.Disk;

        public bool IsEmpty => _milli == 0 && _extra.Ranges.IsEmpty && _extra.Items.IsEmpty;

        /// <summary>The side object, this entry's own (the shared empty one is never written).</summary>
        private Extra Own => _extra == None ? _extra = new Extra() : _extra;

        private RangeSet Ranges
        {
            get => _extra.Ranges;
            set
            {
                if (!value.IsEmpty || _extra != None)
                {
                    Own.Ranges = value;
                }
            }
        }

        private ItemSet Items
        {
            get => _extra.Items;
            set
            {
                if (!value.IsEmpty || _extra != None)
                {
                    Own.Items = value;
                }
            }
        }

        public Entry Clone()
        {
            // RangeSet and ItemSet are immutable: sharing them is a copy.
            var e = new Entry { _milli = _milli, _hasScalar = _hasScalar };
            if (_extra != None)
            {
                e._extra = new Extra { Ranges = _extra.Ranges, Items = _extra.Items, Reservation = _extra.Reservation, Disk = _extra.Disk };
            }
            return e;
        }

        private void Identify(Reservation? reservation, DiskInfo? disk)
        {
            if ((reservation is not null && Reservation is null) || (disk is not null && Disk is null))
            {
                Own.Reservation ??= reservation;
                Own.Disk ??= disk;
            }
        }

        public void Add(Resource r)
        {
            Identify(r.Reservation, r.Disk);
            switch (r.ValueCase)
            {
                case Resource.ValueOneofCase.Scalar:
                    _hasScalar = true;
                    _milli = checked(_milli + FixedScalar.ToFixed(r.Scalar));
                    break;
                case Resource.ValueOneofCase.Ranges:
                    Ranges = Ranges.Union(RangeSet.FromProto(r.Ranges));
                    break;
                case Resource.ValueOneofCase.Set:
                    Items = Items.Union(ItemSet.FromProto(r.Set));
                    break;
                default:
                    break;
            }
        }

        public void Add(Entry other)
        {
            Identify(other.Reservation, other.Disk);
            if (other._hasScalar)
            {
                _hasScalar = true;
                _milli = checked(_milli + other._milli);
            }
            Ranges = Ranges.Union(other.Ranges);
            Items = Items.Union(other.Items);
        }

        public void Subtract(Resource r)
        {
            switch (r.ValueCase)
            {
                case Resource.ValueOneofCase.Scalar:
                    _milli = Math.Max(0, _milli - FixedScalar.ToFixed(r.Scalar));
                    break;
                case Resource.ValueOneofCase.Ranges:
                    Ranges = Ranges.Subtract(RangeSet.FromProto(r.Ranges));
                    break;
                case Resource.ValueOneofCase.Set:
                    Items = Items.Subtract(ItemSet.FromProto(r.Set));
                    break;
                default:
                    break;
            }
        }

        public void Subtract(Entry other)
        {
            if (other._hasScalar)
            {
                _milli = Math.Max(0, _milli - other._milli);
            }
            Ranges = Ranges.Subtract(other.Ranges);
            Items = Items.Subtract(other.Items);
        }

        public string? Missing(Entry? have)
        {
            if (_hasScalar && _milli > 0)
            {
                var h = have?._milli ?? 0;
                if (_milli > h)
                {
                    return $"needs {FixedScalar.Format(_milli)}, only {FixedScalar.Format(h)} offered";
                }
            }
            var haveRanges = have?.Ranges ?? RangeSet.Empty;
            foreach (var range in Ranges)
            {
                if (!haveRanges.Contains(RangeSet.Of(range)))
                {
                    return $"range [{range.Begin}-{range.End}] is not offered";
                }
            }
            var haveItems = have?.Items ?? ItemSet.Empty;
            foreach (var item in Items)
            {
                if (!haveItems.Contains(item))
                {
                    return $"item '{item}' is not offered";
                }
            }
            return null;
        }

        public Resource? ToResource(string name)
        {
            if (!Ranges.IsEmpty)
            {
                return new Resource { Name = name, Ranges = Ranges.ToProto() };
            }
            if (!Items.IsEmpty)
            {
                return new Resource { Name = name, Set = Items.ToProto() };
            }
            if (_hasScalar && _milli > 0)
            {
                return new Resource { Name = name, Scalar = FixedScalar.ToDouble(_milli) };
            }
            return null;
        }

        private sealed class Extra
        {
            public RangeSet Ranges { get; set; } = RangeSet.Empty;

            public ItemSet Items { get; set; } = ItemSet.Empty;

            public Reservation? Reservation { get; set; }

            public DiskInfo? Disk { get; set; }
        }
    }
}
