using System.Collections;

namespace Scheduler.Protocol.Resources;

/// <summary>
/// An immutable set of strings kept sorted (ordinal) and distinct: the value of a set resource
/// (<c>zones:{a,b}</c>, GPU ids). The set counterpart of <see cref="RangeSet"/>; every resource
/// bag of the project (<see cref="ResourceSet"/>, the master's and the allocator's packed bags,
/// the SDK's offer pool) does its set arithmetic here.
/// </summary>
public sealed class ItemSet : IEquatable<ItemSet>, IReadOnlyList<string>
{
    private readonly string[] _items;

    public static readonly ItemSet Empty = new([]);

    private ItemSet(string[] sortedDistinct) => _items = sortedDistinct;

    /// <summary>The set of <paramref name="items"/> (duplicates dropped, order irrelevant).</summary>
    public static ItemSet Of(IEnumerable<string> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        var array = items.ToArray();
        if (array.Length == 0)
        {
            return Empty;
        }

        Array.Sort(array, StringComparer.Ordinal);
        var n = 1;
        for (var i = 1; i < array.Length; i++)
        {
            if (!string.Equals(array[i], array[n - 1], StringComparison.Ordinal))
            {
                array[n++] = array[i];
            }
        }

        return new ItemSet(n == array.Length ? array : array[..n]);
    }

    public static ItemSet Of(params string[] items) => Of((IEnumerable<string>)items);

    /// <summary>Converts the proto form.</summary>
    public static ItemSet FromProto(Sched.V1.ValueSet? set) => set is null ? Empty : Of(set.Items);

    public Sched.V1.ValueSet ToProto()
    {
        var set = new Sched.V1.ValueSet();
        set.Items.AddRange(_items);
        return set;
    }

    public int Count => _items.Length;

    public bool IsEmpty => _items.Length == 0;

    public string this[int index] => _items[index];

    public bool Contains(string item) => Array.BinarySearch(_items, item, StringComparer.Ordinal) >= 0;

    /// <summary>Whether every item of <paramref name="other"/> is here.</summary>
    public bool Contains(ItemSet other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other._items.Length > _items.Length)
        {
            return false;
        }

        var i = 0;
        foreach (var want in other._items)
        {
            while (i < _items.Length && string.CompareOrdinal(_items[i], want) < 0)
            {
                i++;
            }

            if (i == _items.Length || !string.Equals(_items[i], want, StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }

    public ItemSet Union(ItemSet other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.IsEmpty || ReferenceEquals(this, other))
        {
            return this;
        }

        if (IsEmpty)
        {
            return other;
        }

        var result = new List<string>(_items.Length + other._items.Length);
        int i = 0, j = 0;
        while (i < _items.Length || j < other._items.Length)
        {
            var c = i == _items.Length ? 1 : j == other._items.Length ? -1 : string.CompareOrdinal(_items[i], other._items[j]);
            if (c <= 0)
            {
                result.Add(_items[i++]);
                if (c == 0)
                {
                    j++;
                }
            }
            else
            {
                result.Add(other._items[j++]);
            }
        }

        return new ItemSet([.. result]);
    }

    /// <summary>The items here that are not in <paramref name="other"/>.</summary>
    public ItemSet Subtract(ItemSet other) => Filter(other, keepShared: false);

    /// <summary>The items both sets have.</summary>
    public ItemSet Intersect(ItemSet other) => Filter(other, keepShared: true);

    private ItemSet Filter(ItemSet other, bool keepShared)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (IsEmpty || other.IsEmpty)
        {
            return keepShared ? Empty : this;
        }

        var result = new List<string>(_items.Length);
        foreach (var item in _items)
        {
            if (other.Contains(item) == keepShared)
            {
                result.Add(item);
            }
        }

        return result.Count == _items.Length ? this : result.Count == 0 ? Empty : new ItemSet([.. result]);
    }

    public bool Equals(ItemSet? other) =>
        other is not null && _items.AsSpan().SequenceEqual(other._items, StringComparer.Ordinal);

    public override bool Equals(object? obj) => Equals(obj as ItemSet);

    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var item in _items)
        {
            h.Add(item, StringComparer.Ordinal);
        }

        return h.ToHashCode();
    }

    public IEnumerator<string> GetEnumerator() => ((IEnumerable<string>)_items).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>The text form, <c>{a,b}</c>.</summary>
    public override string ToString() => "{" + string.Join(',', _items) + "}";
}
