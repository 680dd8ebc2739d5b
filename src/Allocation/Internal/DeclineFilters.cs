namespace Scheduler.Allocation.Internal;

/// <summary>
/// Decline filters of one agent: framework index → expiry (UTC ticks), in two parallel arrays
/// sorted by framework index. Compact on purpose: decline-heavy workloads keep one per
/// (framework, agent) pair.
/// </summary>
internal sealed class DeclineFilters
{
    private int[] _frameworks = [];
    private long[] _expiries = [];

    public int Count { get; private set; }

    public long EarliestExpiry
    {
        get
        {
            var min = long.MaxValue;
            for (var i = 0; i < Count; i++)
            {
                min = Math.Min(min, _expiries[i]);
            }

            return min;
        }
    }

    /// <summary>Whether the framework is filtered at <paramref name="now"/>.</summary>
    public bool IsFiltered(int framework, long now)
    {
        if (Count == 0)
        {
            return false;
        }

        var i = Array.BinarySearch(_frameworks, 0, Count, framework);
        return i >= 0 && _expiries[i] > now;
    }

    /// <summary>Sets (or extends/shortens) a filter; returns true when it is new.</summary>
    public bool Set(int framework, long expiry)
    {
        var i = Array.BinarySearch(_frameworks, 0, Count, framework);
        if (i >= 0)
        {
            _expiries[i] = expiry;
            return false;
        }

        i = ~i;
        if (Count == _frameworks.Length)
        {
            var size = Math.Max(2, Count * 2);
            Array.Resize(ref _frameworks, size);
            Array.Resize(ref _expiries, size);
        }

        Array.Copy(_frameworks, i, _frameworks, i + 1, Count - i);
        Array.Copy(_expiries, i, _expiries, i + 1, Count - i);
        _frameworks[i] = framework;
        _expiries[i] = expiry;
        Count++;
        return true;
    }

    public bool Remove(int framework)
    {
        var i = Array.BinarySearch(_frameworks, 0, Count, framework);
        if (i < 0)
        {
            return false;
        }

        RemoveAt(i);
        return true;
    }

    private void RemoveAt(int i)
    {
        Count--;
        Array.Copy(_frameworks, i + 1, _frameworks, i, Count - i);
        Array.Copy(_expiries, i + 1, _expiries, i, Count - i);
        if (Count == 0)
        {
            _frameworks = [];
            _expiries = [];
        }
    }

    /// <summary>Drops filters expired at <paramref name="now"/>, calling <paramref name="onRemoved"/> for each framework.</summary>
    public void RemoveExpired(long now, Action<int> onRemoved)
    {
        for (var i = Count - 1; i >= 0; i--)
        {
            if (_expiries[i] <= now)
            {
                var fw = _frameworks[i];
                RemoveAt(i);
                onRemoved(fw);
            }
        }
    }

    public int CountActive(long now)
    {
        var n = 0;
        for (var i = 0; i < Count; i++)
        {
            if (_expiries[i] > now)
            {
                n++;
            }
        }

        return n;
    }

    public IEnumerable<int> Frameworks()
    {
        for (var i = 0; i < Count; i++)
        {
            yield return _frameworks[i];
        }
    }

    public void Clear()
    {
        Count = 0;
        _frameworks = [];
        _expiries = [];
    }
}
