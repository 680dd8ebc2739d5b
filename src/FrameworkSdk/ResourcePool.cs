using Sched.V1;

namespace Scheduler.FrameworkSdk;

/// <summary>
/// A mutable bag of one agent's resources from which tasks are carved. Scalars are kept to three
/// decimals (as the master does). A wanted resource matches an available one with the same name
/// and the same reservation role (none = unreserved).
/// </summary>
internal sealed class ResourcePool
{
    private const double Epsilon = 0.0005;
    private readonly List<Resource> _items;

    public ResourcePool(IEnumerable<Resource> resources)
    {
        _items = resources.Select(r => r.Clone()).ToList();
    }

    public IReadOnlyList<Resource> Items => _items;

    public ResourcePool Copy() => new(_items);

    /// <summary>The quantity of <paramref name="name"/> free for new uses (persistent volumes are
    /// not: a task takes a volume whole, by its id).</summary>
    public double Scalar(string name) => Round(_items.Where(r => r.Name == name && r.ValueCase == Resource.ValueOneofCase.Scalar && r.Disk is null).Sum(r => r.Scalar));

    public static double Round(double value) => Math.Round(value, 3, MidpointRounding.AwayFromZero);

    /// <summary>Takes exactly <paramref name="wanted"/> (all or nothing).</summary>
    public bool TryTake(IEnumerable<Resource> wanted)
    {
        var trial = Copy();
        foreach (var w in wanted)
        {
            if (!trial.TakeOne(w))
            {
                return false;
            }
        }
        _items.Clear();
        _items.AddRange(trial._items);
        return true;
    }

    public bool Contains(IEnumerable<Resource> wanted) => Copy().TryTake(wanted);

    /// <summary>
    /// Carves <paramref name="amount"/> of scalar <paramref name="name"/>, reserved resources of
    /// the role first, then unreserved; returns the pieces (keeping their reservations).
    /// </summary>
    public List<Resource>? CarveScalar(string name, double amount)
    {
        amount = Round(amount);
        if (amount <= 0)
        {
            return [];
        }
        if (Scalar(name) + Epsilon < amount)
        {
            return null;
        }
        var pieces = new List<Resource>();
        var left = amount;
        foreach (var r in _items.Where(r => r.Name == name && r.ValueCase == Resource.ValueOneofCase.Scalar && r.Disk is null)
                     .OrderBy(r => r.Reservation is null ? 1 : 0).ToList())
        {
            if (left <= Epsilon)
            {
                break;
            }
            var take = Round(Math.Min(left, r.Scalar));
            if (take <= 0)
            {
                continue;
            }
            var piece = r.Clone();
            piece.Scalar = take;
            pieces.Add(piece);
            r.Scalar = Round(r.Scalar - take);
            left = Round(left - take);
        }
        _items.RemoveAll(r => r.ValueCase == Resource.ValueOneofCase.Scalar && r.Scalar <= Epsilon);
        return pieces;
    }

    /// <summary>Carves <paramref name="count"/> ports (lowest first), or the given ones.</summary>
    public List<Resource>? CarvePorts(int count, IReadOnlyCollection<ulong> specific)
    {
        var pieces = new List<Resource>();
        foreach (var port in specific)
        {
            var owner = _items.FirstOrDefault(r => r.Name == "ports" && r.Ranges is { } rs && rs.Range.Any(x => x.Begin <= port && port <= x.End));
            if (owner is null)
            {
                return null;
            }
            pieces.Add(PortResource(owner, port, port));
            Subtract(owner, port, port);
        }
        for (var i = 0; i < count; i++)
        {
            var owner = _items.FirstOrDefault(r => r.Name == "ports" && r.Ranges is { } rs && rs.Range.Count > 0);
            if (owner is null)
            {
                return null;
            }
            var port = owner.Ranges.Range.Min(x => x.Begin);
            pieces.Add(PortResource(owner, port, port));
            Subtract(owner, port, port);
        }
        _items.RemoveAll(r => r.ValueCase == Resource.ValueOneofCase.Ranges && r.Ranges.Range.Count == 0);
        return Merge(pieces);
    }

    private bool TakeOne(Resource wanted)
    {
        var role = wanted.Reservation?.Role;
        var candidates = _items.Where(r => r.Name == wanted.Name && r.ValueCase == wanted.ValueCase && r.Reservation?.Role == role && Equals(r.Disk, wanted.Disk)).ToList();
        switch (wanted.ValueCase)
        {
            case Resource.ValueOneofCase.Scalar:
                var left = Round(wanted.Scalar);
                if (candidates.Sum(c => c.Scalar) + Epsilon < left)
                {
                    return false;
                }
                foreach (var c in candidates)
                {
                    var take = Math.Min(left, c.Scalar);
                    c.Scalar = Round(c.Scalar - take);
                    left = Round(left - take);
                }
                _items.RemoveAll(r => r.ValueCase == Resource.ValueOneofCase.Scalar && r.Scalar <= Epsilon);
                return true;
            case Resource.ValueOneofCase.Ranges:
                foreach (var range in wanted.Ranges.Range)
                {
                    var owner = candidates.FirstOrDefault(c => c.Ranges.Range.Any(x => x.Begin <= range.Begin && range.End <= x.End));
                    if (owner is null)
                    {
                        return false;
                    }
                    Subtract(owner, range.Begin, range.End);
                }
                return true;
            case Resource.ValueOneofCase.Set:
                foreach (var item in wanted.Set.Items)
                {
                    var owner = candidates.FirstOrDefault(c => c.Set.Items.Contains(item));
                    if (owner is null)
                    {
                        return false;
                    }
                    owner.Set.Items.Remove(item);
                }
                return true;
            default:
                return false;
        }
    }

    private static Resource PortResource(Resource owner, ulong begin, ulong end)
    {
        var piece = owner.Clone();
        piece.Ranges = new Ranges();
        piece.Ranges.Range.Add(new Sched.V1.Range { Begin = begin, End = end });
        return piece;
    }

    private static void Subtract(Resource owner, ulong begin, ulong end)
    {
        var result = new List<Sched.V1.Range>();
        foreach (var x in owner.Ranges.Range)
        {
            if (end < x.Begin || begin > x.End)
            {
                result.Add(x);
                continue;
            }
            if (x.Begin < begin)
            {
                result.Add(new Sched.V1.Range { Begin = x.Begin, End = begin - 1 });
            }
            if (end < x.End)
            {
                result.Add(new Sched.V1.Range { Begin = end + 1, End = x.End });
            }
        }
        owner.Ranges.Range.Clear();
        owner.Ranges.Range.Add(result);
    }

    private static List<Resource> Merge(List<Resource> pieces)
    {
        // One ports resource per reservation, with adjacent ports joined into ranges.
        var merged = new List<Resource>();
        foreach (var group in pieces.GroupBy(p => p.Reservation?.Role ?? ""))
        {
            var first = group.First().Clone();
            var ports = group.SelectMany(p => p.Ranges.Range).OrderBy(r => r.Begin).ToList();
            first.Ranges.Range.Clear();
            foreach (var r in ports)
            {
                var last = first.Ranges.Range.LastOrDefault();
                if (last is not null && last.End + 1 >= r.Begin)
                {
                    last.End = Math.Max(last.End, r.End);
                }
                else
                {
                    first.Ranges.Range.Add(r.Clone());
                }
            }
            merged.Add(first);
        }
        return merged;
    }
}
