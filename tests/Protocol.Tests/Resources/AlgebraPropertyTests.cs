using FsCheck;
using FsCheck.Fluent;
using Sched.V1;
using Scheduler.Protocol.Resources;
using Xunit;

namespace Scheduler.Protocol.Tests.Resources;

/// <summary>
/// Laws of the pieces of the resource algebra (fixed-point scalars, range sets, item sets) and of
/// long add/subtract sequences, with generators that shrink a failing case to its smallest form.
/// </summary>
public class AlgebraPropertyTests
{
    private static void Check(Property p) => p.QuickCheckThrowOnFailure();

    /// <summary>Shrinks a list by dropping one element at a time (a failing sequence shrinks to the few steps that matter).</summary>
    internal static IEnumerable<List<T>> ShrinkList<T>(List<T> list)
    {
        if (list.Count > 1)
        {
            yield return list[..(list.Count / 2)];
            yield return list[(list.Count / 2)..];
        }

        for (var i = 0; i < list.Count; i++)
        {
            var shorter = new List<T>(list);
            shorter.RemoveAt(i);
            yield return shorter;
        }
    }

    private static readonly Gen<ItemSet> Items =
        from items in Gen.SubListOf(["a", "b", "c", "d", "e", "f"]) select ItemSet.Of(items);

    private static readonly Arbitrary<(ItemSet, ItemSet)> ItemPairs =
        Arb.From(from a in Items from b in Items select (a, b));

    private static readonly Gen<RangeSet> Ranges =
        from list in Gen.ListOf(from b in Gen.Choose(0, 200) from n in Gen.Choose(0, 20) select new ValueRange((ulong)b, (ulong)(b + n)))
        select RangeSet.Of(list);

    private static readonly Arbitrary<(RangeSet, RangeSet)> RangePairs =
        Arb.From(from a in Ranges from b in Ranges select (a, b));

    [Fact]
    public void Item_sets_obey_union_difference_and_containment() =>
        Check(Prop.ForAll(ItemPairs, p =>
        {
            var (a, b) = p;
            var union = a.Union(b);
            var expected = a.Concat(b).Distinct().Order(StringComparer.Ordinal);
            return union.SequenceEqual(expected)
                && union.Contains(a) && union.Contains(b)
                && union.Subtract(b).Union(b).Equals(union)
                && a.Subtract(b).Union(a.Intersect(b)).Equals(a)
                && a.Contains(b) == b.Subtract(a).IsEmpty
                && a.Intersect(b).Equals(b.Intersect(a));
        }));

    [Fact]
    public void Range_sets_obey_union_difference_and_containment() =>
        Check(Prop.ForAll(RangePairs, p =>
        {
            var (a, b) = p;
            var union = a.Union(b);
            var values = Values(a).Union(Values(b)).Order().ToList();
            return Values(union).SequenceEqual(values)
                && union.Contains(a) && union.Contains(b)
                && union.Subtract(b).Union(b).Equals(union)
                && Values(a.Subtract(b)).SequenceEqual(Values(a).Except(Values(b)).Order())
                && a.Contains(b) == b.Subtract(a).IsEmpty;
        }));

    private static IEnumerable<ulong> Values(RangeSet set) =>
        set.SelectMany(r => Enumerable.Range((int)r.Begin, (int)(r.End - r.Begin + 1)).Select(v => (ulong)v));

    /// <summary>One step of a long sequence: add (true) or take away a scalar amount in thousandths.</summary>
    private static readonly Arbitrary<List<(bool Add, int Milli)>> Steps =
        Arb.From(
            Gen.ListOf(from add in Gen.Frequency((3, Gen.Constant(true)), (2, Gen.Constant(false))) from milli in Gen.Choose(1, 5_000) select (add, milli))
                .Select(l => l.ToList()),
            ShrinkList);

    [Fact]
    public void Long_sequences_of_fractional_cpus_never_drift() =>
        Check(Prop.ForAll(Steps, steps =>
        {
            // Model: the exact sum in thousandths, saturating at zero as Subtract does.
            var model = 0L;
            var set = ResourceSet.Empty;
            foreach (var (add, milli) in steps)
            {
                var delta = ResourceSet.From([new Resource { Name = "cpus", Scalar = milli / 1000.0 }]);
                model = add ? model + milli : Math.Max(0, model - milli);
                set = add ? set + delta : set - delta;
                if (set.ScalarFixed("cpus") != model)
                {
                    return false;
                }
            }

            return true;
        }));

    [Fact]
    public void A_tenth_added_ten_thousand_times_then_removed_leaves_exactly_nothing()
    {
        // Doubles would leave 1.8e-12 here, which an epsilon of 1e-6 hid and an epsilon of
        // 0.0005 could turn into "fits" for a request 0.0004 larger than what was free.
        var tenth = ResourceSet.Parse("cpus:0.1");
        var set = ResourceSet.Empty;
        for (var i = 0; i < 10_000; i++)
        {
            set += tenth;
        }

        Assert.Equal(1_000_000, set.ScalarFixed("cpus"));
        Assert.False(set.Contains(ResourceSet.Parse("cpus:1000.001")));
        for (var i = 0; i < 10_000; i++)
        {
            set -= tenth;
        }

        Assert.True(set.IsEmpty);
    }

    [Fact]
    public void Fixed_point_conversion_round_trips_every_thousandth() =>
        Check(Prop.ForAll(Arb.From(Gen.Choose(0, int.MaxValue)), milli =>
            FixedScalar.ToFixed(FixedScalar.ToDouble(milli)) == milli
            && FixedScalar.Format(milli) == FixedScalar.ToDouble(milli).ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)));

    [Fact]
    public void Identity_keys_ignore_label_order_and_separate_everything_else()
    {
        var a = new Reservation { Type = Reservation.Types.Type.Dynamic, Role = "eng", Principal = "ops" };
        a.Labels.Add("x", "1");
        a.Labels.Add("y", "2");
        var b = new Reservation { Type = Reservation.Types.Type.Dynamic, Role = "eng", Principal = "ops" };
        b.Labels.Add("y", "2");
        b.Labels.Add("x", "1");
        Assert.Equal(ResourceIdentity.Key(a, null), ResourceIdentity.Key(b, null));
        Assert.Equal("", ResourceIdentity.Key(null, null));
        var refined = b.Clone();
        refined.RefinedFrom = new Reservation { Type = Reservation.Types.Type.Dynamic, Role = "e" };
        var volume = new DiskInfo { Persistence = new DiskInfo.Types.Persistence { Id = "v1" } };
        string[] keys =
        [
            ResourceIdentity.Key(a, null), ResourceIdentity.Key(refined, null), ResourceIdentity.Key(a, volume),
            ResourceIdentity.Key(null, volume), ResourceIdentity.Key(new Reservation { Type = Reservation.Types.Type.Static, Role = "eng" }, null),
        ];
        Assert.Equal(keys.Length, keys.Distinct().Count());
    }

    [Theory]
    [InlineData("rack", "not NAME:VALUE")]
    [InlineData("slots:[4-1]", "begin after its end")]
    [InlineData("zones:{a,}", "set item is empty")]
    [InlineData("ra ck:r1", "contains ' '")]
    public void Bad_attribute_text_says_what_is_wrong(string text, string expected)
    {
        var e = Assert.Throws<ResourceFormatException>(() => AttributeText.Parse(text));
        Assert.Contains(expected, e.Message);
        Assert.Contains("Expected NAME:VALUE", e.Message);
    }

    [Fact]
    public void Attributes_share_the_resource_value_grammar()
    {
        var a = AttributeText.Parse("rack:r1; level:3 ;zones:{b,a};slots:[1-4,8]");
        Assert.Equal("r1", a[0].Text);
        Assert.Equal(3, a[1].Scalar);
        Assert.Equal(["b", "a"], a[2].Set.Items);
        Assert.Equal("[1-4,8-8]", RangeSet.FromProto(a[3].Ranges).ToString());
        Assert.Empty(AttributeText.Parse(null));
    }

    [Fact]
    public void Formatted_attributes_parse_back_to_the_same()
    {
        var a = AttributeText.Parse("rack:r1;level:3.5;zones:{b,a};slots:[1-4,8]");
        var text = AttributeText.Format(a);
        Assert.Equal("rack:r1;level:3.5;zones:{b,a};slots:[1-4,8-8]", text);
        Assert.Equal(a, AttributeText.Parse(text));
    }
}
