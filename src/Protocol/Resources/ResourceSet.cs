using System.Collections;
using Sched.V1;

namespace Scheduler.Protocol.Resources;

/// <summary>
/// An immutable, normalised bag of resources with exact arithmetic. Entries with the same identity
/// (name, value type, reservation, allocation role, disk info) are merged: scalars summed in
/// fixed point (three decimals), ranges unioned and coalesced, sets unioned. Zero scalars and
/// empty ranges/sets are dropped. Enumerating yields fresh proto <see cref="Resource"/> objects.
/// </summary>
public sealed partial class ResourceSet : IEquatable<ResourceSet>, IReadOnlyCollection<Resource>
{
    private readonly Entry[] _entries;

    public static readonly ResourceSet Empty = new([]);

    private ResourceSet(Entry[] entries) => _entries = entries;

    /// <summary>Validates and normalises proto resources.</summary>
    /// <exception cref="InvalidResourceException">Validation failed (see <see cref="ResourceValidator"/>).</exception>
    public static ResourceSet From(IEnumerable<Resource> resources)
    {
        ArgumentNullException.ThrowIfNull(resources);
        var list = resources as IReadOnlyCollection<Resource> ?? resources.ToList();
        ResourceValidator.ThrowIfInvalid(list);
        var builder = new List<Entry>(list.Count);
        foreach (var r in list)
        {
            Merge(builder, Entry.From(r));
        }

        return Create(builder);
    }

    /// <summary>Parses Mesos text syntax (<c>cpus:4;mem:4096;ports:[31000-32000];cpus(web):2</c>).</summary>
    /// <exception cref="ResourceFormatException">The text is malformed; the message says where and what is expected.</exception>
    public static ResourceSet Parse(string text) => From(ResourceText.Parse(text));

    /// <summary>Parses like <see cref="Parse"/>, returning the error message instead of throwing.</summary>
    public static bool TryParse(string text, out ResourceSet result, out string? error)
    {
        try
        {
            result = Parse(text);
            error = null;
            return true;
        }
        catch (Exception e) when (e is ResourceFormatException or InvalidResourceException)
        {
            result = Empty;
            error = e.Message;
            return false;
        }
    }

    private static ResourceSet Create(List<Entry> entries)
    {
        entries.RemoveAll(e => e.IsEmpty);
        return entries.Count == 0 ? Empty : new ResourceSet([.. entries]);
    }

    private static void Merge(List<Entry> entries, Entry e)
    {
        for (var i = 0; i < entries.Count; i++)
        {
            if (entries[i].SameIdentity(e))
            {
                entries[i] = entries[i].Plus(e);
                return;
            }
        }

        entries.Add(e);
    }

    private Entry? Find(Entry like)
    {
        foreach (var e in _entries)
        {
            if (e.SameIdentity(like))
            {
                return e;
            }
        }

        return null;
    }

    public int Count => _entries.Length;

    public bool IsEmpty => _entries.Length == 0;

    /// <summary>Sum of the scalar resources called <paramref name="name"/>, any reservation.</summary>
    public double Scalar(string name) => FixedScalar.ToDouble(ScalarFixed(name));

    /// <summary>Sum in milli-units of the scalar resources called <paramref name="name"/>.</summary>
    public long ScalarFixed(string name)
    {
        long total = 0;
        foreach (var e in _entries)
        {
            if (e.Kind == Resource.ValueOneofCase.Scalar && e.Shape.Name == name)
            {
                total += e.Milli;
            }
        }

        return total;
    }

    /// <summary>Union of the ranges called <paramref name="name"/>, any reservation.</summary>
    public RangeSet Ranges(string name)
    {
        var result = RangeSet.Empty;
        foreach (var e in _entries)
        {
            if (e.Kind == Resource.ValueOneofCase.Ranges && e.Shape.Name == name)
            {
                result = result.Union(e.Ranges);
            }
        }

        return result;
    }

    /// <summary>Distinct resource names, in order of first appearance.</summary>
    public IReadOnlyList<string> Names => _entries.Select(e => e.Shape.Name).Distinct(StringComparer.Ordinal).ToList();

    /// <summary>Union of both bags (scalars summed).</summary>
    public ResourceSet Add(ResourceSet other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.IsEmpty)
        {
            return this;
        }

        if (IsEmpty)
        {
            return other;
        }

        var list = new List<Entry>(_entries);
        foreach (var e in other._entries)
        {
            Merge(list, e);
        }

        return Create(list);
    }

    /// <summary>
    /// This bag without <paramref name="other"/>: scalars subtract saturating at zero, ranges and
    /// sets lose the values <paramref name="other"/> has; entries of <paramref name="other"/> with
    /// no counterpart here are ignored. Never yields negative quantities. Use
    /// <see cref="Contains"/> first when the caller requires an exact subtraction.
    /// </summary>
    public ResourceSet Subtract(ResourceSet other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.IsEmpty || IsEmpty)
        {
            return this;
        }

        var list = new List<Entry>(_entries.Length);
        foreach (var e in _entries)
        {
            var cut = other.Find(e);
            list.Add(cut is null ? e : e.Minus(cut));
        }

        return Create(list);
    }

    /// <summary>Whether <paramref name="other"/> ⊆ this (identity-wise: reserved cpus are not unreserved cpus).</summary>
    public bool Contains(ResourceSet other)
    {
        ArgumentNullException.ThrowIfNull(other);
        foreach (var e in other._entries)
        {
            var mine = Find(e);
            if (mine is null || !mine.Covers(e))
            {
                return false;
            }
        }

        return true;
    }

    public static ResourceSet operator +(ResourceSet a, ResourceSet b) => a.Add(b);

    public static ResourceSet operator -(ResourceSet a, ResourceSet b) => a.Subtract(b);

    /// <summary>The entries whose proto form satisfies <paramref name="predicate"/>.</summary>
    public ResourceSet Where(Func<Resource, bool> predicate)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        var kept = _entries.Where(e => predicate(e.Shape)).ToList();
        return kept.Count == _entries.Length ? this : Create(kept);
    }

    /// <summary>Resources without a reservation.</summary>
    public ResourceSet Unreserved() => Where(r => r.Reservation is null);

    /// <summary>Resources reserved for exactly <paramref name="role"/>.</summary>
    public ResourceSet ReservedFor(string role) => Where(r => r.Reservation is { } res && res.Role == role);

    /// <summary>Resources a role may use: unreserved ones and those reserved for it or an ancestor.</summary>
    public ResourceSet UsableBy(string role) =>
        Where(r => r.Reservation is null || RoleName.IsSelfOrDescendant(role, r.Reservation.Role));

    /// <summary>Groups by reservation role; unreserved resources are under <see cref="RoleName.Any"/>.</summary>
    public IReadOnlyDictionary<string, ResourceSet> ByReservationRole() =>
        GroupBy(e => e.Shape.Reservation?.Role ?? RoleName.Any);

    /// <summary>Groups by <c>allocation_role</c> ("" for none).</summary>
    public IReadOnlyDictionary<string, ResourceSet> ByAllocationRole() => GroupBy(e => e.Shape.AllocationRole);

    private Dictionary<string, ResourceSet> GroupBy(Func<Entry, string> key)
    {
        var result = new Dictionary<string, ResourceSet>(StringComparer.Ordinal);
        foreach (var group in _entries.GroupBy(key, StringComparer.Ordinal))
        {
            result[group.Key] = new ResourceSet([.. group]);
        }

        return result;
    }

    /// <summary>The same resources marked as allocated to <paramref name="role"/> (null or "" clears it).</summary>
    public ResourceSet WithAllocationRole(string? role)
    {
        var list = new List<Entry>(_entries.Length);
        foreach (var e in _entries)
        {
            Merge(list, e.WithAllocationRole(role ?? ""));
        }

        return Create(list);
    }

    /// <summary>The same quantities with reservations removed (what UNRESERVE yields).</summary>
    public ResourceSet WithoutReservations()
    {
        var list = new List<Entry>(_entries.Length);
        foreach (var e in _entries)
        {
            Merge(list, e.WithReservation(null));
        }

        return Create(list);
    }

    /// <summary>The same quantities reserved for <paramref name="reservation"/> (what RESERVE yields).</summary>
    public ResourceSet WithReservation(Reservation reservation)
    {
        ArgumentNullException.ThrowIfNull(reservation);
        var list = new List<Entry>(_entries.Length);
        foreach (var e in _entries)
        {
            Merge(list, e.WithReservation(reservation));
        }

        return Create(list);
    }

    /// <summary>Fresh proto objects for the wire.</summary>
    public List<Resource> ToList() => _entries.Select(e => e.ToProto()).ToList();

    public IEnumerator<Resource> GetEnumerator() => _entries.Select(e => e.ToProto()).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Equal when each contains the other (order-independent).</summary>
    public bool Equals(ResourceSet? other) =>
        other is not null && other._entries.Length == _entries.Length && Contains(other) && other.Contains(this);

    public override bool Equals(object? obj) => Equals(obj as ResourceSet);

    public override int GetHashCode()
    {
        var h = 0;
        foreach (var e in _entries)
        {
            h ^= HashCode.Combine(e.Shape.Name, e.Kind, e.Milli);
        }

        return h;
    }

    /// <summary>Mesos text syntax; see <see cref="ResourceText.Format"/>.</summary>
    public override string ToString() => ResourceText.Format(this);
}
