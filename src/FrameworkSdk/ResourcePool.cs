using Sched.V1;
using Scheduler.Protocol.Resources;

namespace Scheduler.FrameworkSdk;

/// <summary>
/// A mutable bag of one agent's resources from which tasks are carved. A wanted resource matches
/// an available one with the same name and the same reservation role (none = unreserved).
/// Arithmetic is the protocol's, exact: scalars in fixed-point milli-units (<see cref="FixedScalar"/>;
/// every stored value is a whole number of milli-units, so no tolerance is needed), ranges as
/// <see cref="RangeSet"/>, sets as <see cref="ItemSet"/>.
/// </summary>
internal sealed class ResourcePool
{
    private readonly List<Resource> _items;

    public ResourcePool(IEnumerable<Resource> resources)
    {
        _items = resources.Select(r =>
        {
            var copy = r.Clone();
            if (copy.ValueCase == Resource.ValueOneofCase.Scalar)
            {
                copy.Scalar = FixedScalar.Round(copy.Scalar);
            }
            return copy;
        }).ToList();
    }

    public IReadOnlyList<Resource> Items => _items;

    public ResourcePool Copy() => new(_items);

    /// <summary>The quantity of <paramref name="name"/> free for new uses (persistent volumes are
    /// not: a task takes a volume whole, by its id).</summary>
    public double Scalar(string name) => FixedScalar.ToDouble(ScalarMilli(name));

    private long ScalarMilli(string name) =>
        _items.Where(r => r.Name == name && r.ValueCase == Resource.ValueOneofCase.Scalar && r.Disk is null).Sum(Milli);

    private static long Milli(Resource r) => FixedScalar.ToFixed(r.Scalar);

    /// <summary>The sum of scalar resource <paramref name="name"/> in <paramref name="resources"/>, exact to three decimals.</summary>
    public static double SumScalar(IEnumerable<Resource> resources, string name) =>
        FixedScalar.ToDouble(resources.Where(r => r.Name == name && r.ValueCase == Resource.ValueOneofCase.Scalar).Sum(Milli));

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
    /// <exception cref="ArgumentOutOfRangeException">The amount is negative, not finite, or too large.</exception>
    public List<Resource>? CarveScalar(string name, double amount)
    {
        var left = FixedScalar.ToFixed(amount);
        if (left == 0)
        {
            return [];
        }
        if (ScalarMilli(name) < left)
        {
            return null;
        }
        var pieces = new List<Resource>();
        foreach (var r in _items.Where(r => r.Name == name && r.ValueCase == Resource.ValueOneofCase.Scalar && r.Disk is null)
                     .OrderBy(r => r.Reservation is null ? 1 : 0).ToList())
        {
            if (left == 0)
            {
                break;
            }
            var have = Milli(r);
            var take = Math.Min(left, have);
            if (take == 0)
            {
                continue;
            }
            var piece = r.Clone();
            piece.Scalar = FixedScalar.ToDouble(take);
            pieces.Add(piece);
            r.Scalar = FixedScalar.ToDouble(have - take);
            left -= take;
        }
        _items.RemoveAll(r => r.ValueCase == Resource.ValueOneofCase.Scalar && Milli(r) == 0);
        return pieces;
    }

    /// <summary>Carves <paramref name="count"/> ports (lowest first), or the given ones.</summary>
    public List<Resource>? CarvePorts(int count, IReadOnlyCollection<ulong> specific)
    {
        var pieces = new List<Resource>();
        foreach (var port in specific)
        {
            var owner = _items.FirstOrDefault(r => r.Name == "ports" && r.Ranges is { } rs && RangeSet.FromProto(rs).Contains(port));
            if (owner is null)
            {
                return null;
            }
            pieces.Add(PortResource(owner, RangeSet.Of(new ValueRange(port, port))));
            Subtract(owner, RangeSet.Of(new ValueRange(port, port)));
        }
        for (var i = 0; i < count; i++)
        {
            var owner = _items.FirstOrDefault(r => r.Name == "ports" && r.Ranges is { } rs && rs.Range.Count > 0);
            if (owner is null)
            {
                return null;
            }
            var port = RangeSet.FromProto(owner.Ranges)[0].Begin;
            pieces.Add(PortResource(owner, RangeSet.Of(new ValueRange(port, port))));
            Subtract(owner, RangeSet.Of(new ValueRange(port, port)));
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
                var left = Milli(wanted);
                if (candidates.Sum(Milli) < left)
                {
                    return false;
                }
                foreach (var c in candidates)
                {
                    var have = Milli(c);
                    var take = Math.Min(left, have);
                    c.Scalar = FixedScalar.ToDouble(have - take);
                    left -= take;
                }
                _items.RemoveAll(r => r.ValueCase == Resource.ValueOneofCase.Scalar && Milli(r) == 0);
                return true;
            case Resource.ValueOneofCase.Ranges:
                foreach (var range in RangeSet.FromProto(wanted.Ranges))
                {
                    var one = RangeSet.Of(range);
                    var owner = candidates.FirstOrDefault(c => RangeSet.FromProto(c.Ranges).Contains(one));
                    if (owner is null)
                    {
                        return false;
                    }
                    Subtract(owner, one);
                }
                return true;
            case Resource.ValueOneofCase.Set:
                foreach (var item in ItemSet.FromProto(wanted.Set))
                {
                    var owner = candidates.FirstOrDefault(c => c.Set.Items.Contains(item));
                    if (owner is null)
                    {
                        return false;
                    }
                    owner.Set = ItemSet.FromProto(owner.Set).Subtract(ItemSet.Of(item)).ToProto();
                }
                return true;
            default:
                return false;
        }
    }

    private static Resource PortResource(Resource owner, RangeSet ports)
    {
        var piece = owner.Clone();
        piece.Ranges = ports.ToProto();
        return piece;
    }

    private static void Subtract(Resource owner, RangeSet cut) =>
        owner.Ranges = RangeSet.FromProto(owner.Ranges).Subtract(cut).ToProto();

    private static List<Resource> Merge(List<Resource> pieces)
    {
        // One ports resource per reservation, with adjacent ports joined into ranges.
        var merged = new List<Resource>();
        foreach (var group in pieces.GroupBy(p => p.Reservation?.Role ?? ""))
        {
            var first = group.First().Clone();
            first.Ranges = RangeSet.Of(group.SelectMany(p => RangeSet.FromProto(p.Ranges))).ToProto();
            merged.Add(first);
        }
        return merged;
    }
}
