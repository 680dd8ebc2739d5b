using FsCheck;
using FsCheck.Fluent;
using Sched.V1;
using Scheduler.Protocol.Resources;
using Xunit;

namespace Scheduler.Protocol.Tests.Resources;

/// <summary>Algebraic laws of resource arithmetic over random resource bags.</summary>
public class ResourcePropertyTests
{
    private static readonly Reservation?[] Reservations =
    [
        null,
        null,
        new() { Type = Reservation.Types.Type.Static, Role = "web" },
        new() { Type = Reservation.Types.Type.Static, Role = "eng/batch" },
        new() { Type = Reservation.Types.Type.Dynamic, Role = "eng", Principal = "ops" },
    ];

    /// <summary>A bag whose ports lie in [portBase, portBase+63] and whose set items come from <paramref name="items"/>.</summary>
    private static Gen<ResourceSet> Bags(ulong portBase, string[] items)
    {
        var scalar =
            from name in Gen.Elements("cpus", "mem", "disk", "gpus")
            from milli in Gen.Choose(0, 2_000_000)
            from res in Gen.Elements(Reservations)
            select new Resource { Name = name, Scalar = milli / 1000.0, Reservation = res?.Clone() };
        var ports =
            from mask in Gen.Choose(1, int.MaxValue)
            from res in Gen.Elements(Reservations)
            select new Resource { Name = "ports", Ranges = RangesFromMask(portBase, (uint)mask), Reservation = res?.Clone() };
        var set =
            from chosen in Gen.SubListOf(items)
            where chosen.Count > 0
            select MakeSet(chosen);
        var one = Gen.Frequency((6, scalar), (2, ports), (1, set));
        return from list in Gen.ListOf(one) select ResourceSet.From(list);
    }

    private static Resource MakeSet(IEnumerable<string> items)
    {
        var r = new Resource { Name = "zones", Set = new ValueSet() };
        r.Set.Items.AddRange(items);
        return r;
    }

    private static Ranges RangesFromMask(ulong portBase, uint mask)
    {
        var ranges = new Ranges();
        var bit = 0;
        while (bit < 32)
        {
            if ((mask & (1u << bit)) == 0)
            {
                bit++;
                continue;
            }

            var begin = bit;
            while (bit < 32 && (mask & (1u << bit)) != 0)
            {
                bit++;
            }

            // Two ports per bit so that runs are wider than one value.
            ranges.Range.Add(new Sched.V1.Range { Begin = portBase + (ulong)(begin * 2), End = portBase + (ulong)(bit * 2) - 1 });
        }

        return ranges;
    }

    private static readonly Arbitrary<ResourceSet> AnyBag = Bags(31000, ["a", "b", "c", "d"]).ToArbitrary();

    private static readonly Arbitrary<(ResourceSet, ResourceSet)> DisjointPairs =
        (from a in Bags(31000, ["a", "b", "c", "d"]) from b in Bags(40000, ["w", "x", "y", "z"]) select (a, b)).ToArbitrary();

    private static readonly Arbitrary<(ResourceSet, ResourceSet)> AnyPairs =
        (from a in Bags(31000, ["a", "b", "c", "d"]) from b in Bags(31000, ["a", "b", "c", "d"]) select (a, b)).ToArbitrary();

    private static void Check(Property p) => p.QuickCheckThrowOnFailure();

    [Fact]
    public void Adding_then_subtracting_gives_back_the_original() =>
        Check(Prop.ForAll(DisjointPairs, p => (p.Item1 + p.Item2 - p.Item2).Equals(p.Item1)));

    [Fact]
    public void Scalars_add_then_subtract_exactly_even_when_overlapping() =>
        Check(Prop.ForAll(AnyPairs, p =>
        {
            var a = p.Item1.Where(r => r.ValueCase == Resource.ValueOneofCase.Scalar);
            var b = p.Item2.Where(r => r.ValueCase == Resource.ValueOneofCase.Scalar);
            return (a + b - b).Equals(a);
        }));

    [Fact]
    public void A_sum_contains_its_parts() =>
        Check(Prop.ForAll(AnyPairs, p => (p.Item1 + p.Item2).Contains(p.Item1) && (p.Item1 + p.Item2).Contains(p.Item2)));

    [Fact]
    public void Addition_commutes() =>
        Check(Prop.ForAll(AnyPairs, p => (p.Item1 + p.Item2).Equals(p.Item2 + p.Item1)));

    [Fact]
    public void Subtraction_is_never_negative_and_stays_inside() =>
        Check(Prop.ForAll(AnyPairs, p =>
        {
            var d = p.Item1 - p.Item2;
            return d.All(r => r.ValueCase != Resource.ValueOneofCase.Scalar || r.Scalar > 0)
                && p.Item1.Contains(d)
                && (d + p.Item2).Contains(p.Item1);
        }));

    [Fact]
    public void Contains_agrees_with_subtraction() =>
        Check(Prop.ForAll(AnyPairs, p => p.Item1.Contains(p.Item2) == (p.Item2 - p.Item1).IsEmpty));

    [Fact]
    public void Self_difference_is_empty_and_self_containment_holds() =>
        Check(Prop.ForAll(AnyBag, a => (a - a).IsEmpty && a.Contains(a) && a.Contains(ResourceSet.Empty)));

    [Fact]
    public void Parse_of_format_is_identity() =>
        Check(Prop.ForAll(AnyBag, a => ResourceSet.Parse(a.ToString()).Equals(a)));

    [Fact]
    public void Proto_round_trip_is_identity() =>
        Check(Prop.ForAll(AnyBag, a => ResourceSet.From(a.ToList()).Equals(a) && ResourceValidator.Validate(a).Count == 0));

    [Fact]
    public void Grouping_by_reservation_partitions_the_bag() =>
        Check(Prop.ForAll(AnyBag, a => a.ByReservationRole().Values.Aggregate(ResourceSet.Empty, (x, y) => x + y).Equals(a)));
}
