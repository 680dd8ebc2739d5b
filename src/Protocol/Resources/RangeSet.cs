using System.Collections;
using System.Globalization;
using System.Text;

namespace Scheduler.Protocol.Resources;

/// <summary>A closed interval [Begin, End] of unsigned integers.</summary>
public readonly record struct ValueRange(ulong Begin, ulong End)
{
    /// <summary>Number of values in the interval (saturating at <see cref="ulong.MaxValue"/>).</summary>
    public ulong Count => End - Begin == ulong.MaxValue ? ulong.MaxValue : End - Begin + 1;

    public override string ToString() =>
        Begin == End ? Begin.ToString(CultureInfo.InvariantCulture) : string.Create(CultureInfo.InvariantCulture, $"{Begin}-{End}");
}

/// <summary>
/// An immutable set of unsigned integers kept as sorted, disjoint, non-adjacent intervals
/// (<c>[1-3],[4-5]</c> coalesces to <c>[1-5]</c>). Used for <c>ports</c>.
/// </summary>
public sealed class RangeSet : IEquatable<RangeSet>, IReadOnlyList<ValueRange>
{
    private readonly ValueRange[] _ranges;

    public static readonly RangeSet Empty = new([]);

    private RangeSet(ValueRange[] normalized) => _ranges = normalized;

    /// <summary>Builds a set from intervals in any order, overlapping or not (their union).</summary>
    /// <exception cref="ArgumentException">An interval has Begin greater than End.</exception>
    public static RangeSet Of(IEnumerable<ValueRange> ranges)
    {
        var list = new List<ValueRange>();
        foreach (var r in ranges)
        {
            if (r.Begin > r.End)
            {
                throw new ArgumentException($"Range [{r.Begin}-{r.End}] is invalid: its begin is greater than its end.", nameof(ranges));
            }

            list.Add(r);
        }

        return Normalize(list);
    }

    public static RangeSet Of(params ValueRange[] ranges) => Of((IEnumerable<ValueRange>)ranges);

    /// <summary>Converts the proto form (the union of its intervals).</summary>
    public static RangeSet FromProto(Sched.V1.Ranges? ranges) =>
        ranges is null ? Empty : Of(ranges.Range.Select(r => new ValueRange(r.Begin, r.End)));

    public Sched.V1.Ranges ToProto()
    {
        var p = new Sched.V1.Ranges();
        foreach (var r in _ranges)
        {
            p.Range.Add(new Sched.V1.Range { Begin = r.Begin, End = r.End });
        }

        return p;
    }

    private static RangeSet Normalize(List<ValueRange> list)
    {
        if (list.Count == 0)
        {
            return Empty;
        }

        list.Sort((a, b) => a.Begin.CompareTo(b.Begin));
        var result = new List<ValueRange>(list.Count);
        var current = list[0];
        for (var i = 1; i < list.Count; i++)
        {
            var next = list[i];
            // Adjacent intervals merge too: integers have no gap between 3 and 4.
            if (current.End == ulong.MaxValue || next.Begin <= current.End + 1)
            {
                current = new ValueRange(current.Begin, Math.Max(current.End, next.End));
            }
            else
            {
                result.Add(current);
                current = next;
            }
        }

        result.Add(current);
        return new RangeSet([.. result]);
    }

    public int Count => _ranges.Length;

    public bool IsEmpty => _ranges.Length == 0;

    public ValueRange this[int index] => _ranges[index];

    /// <summary>Total number of values (saturating).</summary>
    public ulong ValueCount
    {
        get
        {
            ulong total = 0;
            foreach (var r in _ranges)
            {
                var c = r.Count;
                total = ulong.MaxValue - total < c ? ulong.MaxValue : total + c;
            }

            return total;
        }
    }

    public RangeSet Union(RangeSet other)
    {
        if (other.IsEmpty)
        {
            return this;
        }

        if (IsEmpty)
        {
            return other;
        }

        var list = new List<ValueRange>(_ranges.Length + other._ranges.Length);
        list.AddRange(_ranges);
        list.AddRange(other._ranges);
        return Normalize(list);
    }

    /// <summary>The values of this set not in <paramref name="other"/>.</summary>
    public RangeSet Subtract(RangeSet other)
    {
        if (IsEmpty || other.IsEmpty)
        {
            return this;
        }

        var result = new List<ValueRange>(_ranges.Length + 1);
        var j = 0;
        foreach (var r in _ranges)
        {
            var begin = r.Begin;
            var end = r.End;
            var alive = true;
            while (j < other._ranges.Length && other._ranges[j].End < begin)
            {
                j++;
            }

            var k = j;
            while (alive && k < other._ranges.Length && other._ranges[k].Begin <= end)
            {
                var cut = other._ranges[k];
                if (cut.Begin > begin)
                {
                    result.Add(new ValueRange(begin, cut.Begin - 1));
                }

                if (cut.End >= end)
                {
                    alive = false;
                }
                else
                {
                    begin = cut.End + 1;
                    k++;
                }
            }

            if (alive)
            {
                result.Add(new ValueRange(begin, end));
            }
        }

        return result.Count == 0 ? Empty : new RangeSet([.. result]);
    }

    /// <summary>Whether every value of <paramref name="other"/> is in this set.</summary>
    public bool Contains(RangeSet other)
    {
        var i = 0;
        foreach (var r in other._ranges)
        {
            while (i < _ranges.Length && _ranges[i].End < r.Begin)
            {
                i++;
            }

            if (i == _ranges.Length || _ranges[i].Begin > r.Begin || _ranges[i].End < r.End)
            {
                return false;
            }
        }

        return true;
    }

    public bool Contains(ulong value)
    {
        int lo = 0, hi = _ranges.Length - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_ranges[mid].End < value)
            {
                lo = mid + 1;
            }
            else if (_ranges[mid].Begin > value)
            {
                hi = mid - 1;
            }
            else
            {
                return true;
            }
        }

        return false;
    }

    public bool Equals(RangeSet? other) => other is not null && _ranges.AsSpan().SequenceEqual(other._ranges);

    public override bool Equals(object? obj) => Equals(obj as RangeSet);

    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var r in _ranges)
        {
            h.Add(r);
        }

        return h.ToHashCode();
    }

    public IEnumerator<ValueRange> GetEnumerator() => ((IEnumerable<ValueRange>)_ranges).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Mesos text form: <c>[31000-32000,33000-33010]</c>.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder("[");
        for (var i = 0; i < _ranges.Length; i++)
        {
            if (i > 0)
            {
                sb.Append(',');
            }

            sb.Append(CultureInfo.InvariantCulture, $"{_ranges[i].Begin}-{_ranges[i].End}");
        }

        return sb.Append(']').ToString();
    }
}
