using FsCheck;
using FsCheck.Fluent;
using Sched.V1;
using Scheduler.Master.State;
using Scheduler.Protocol.Resources;
using Xunit;

namespace Scheduler.Master.Tests.State;

/// <summary>
/// The master's <see cref="ResourceBag"/> against the protocol's <see cref="ResourceSet"/> as the
/// oracle: after every step of a random add/subtract sequence both hold the same resources, and
/// containment agrees. Failing sequences shrink to the few steps that matter.
/// </summary>
public sealed class ResourceBagPropertyTests
{
    private static readonly Reservation?[] Reservations =
    [
        null,
        null,
        new() { Type = Reservation.Types.Type.Static, Role = "web" },
        new() { Type = Reservation.Types.Type.Dynamic, Role = "eng", Principal = "ops" },
    ];

    private static readonly Gen<Resource> OneResource = Gen.Frequency(
        (6, from name in Gen.Elements("cpus", "mem", "disk")
            from milli in Gen.Choose(1, 4_000)
            from res in Gen.Elements(Reservations)
            select new Resource { Name = name, Scalar = milli / 1000.0, Reservation = res?.Clone() }),
        (2, from begin in Gen.Choose(31000, 31100)
            from n in Gen.Choose(0, 10)
            from res in Gen.Elements(Reservations)
            select Ports((ulong)begin, (ulong)(begin + n), res)),
        (1, from items in Gen.NonEmptyListOf(Gen.Elements("g0", "g1", "g2", "g3"))
            select Set(items)));

    private static Resource Ports(ulong begin, ulong end, Reservation? res)
    {
        var r = new Resource { Name = "ports", Ranges = new Ranges(), Reservation = res?.Clone() };
        r.Ranges.Range.Add(new Sched.V1.Range { Begin = begin, End = end });
        return r;
    }

    private static Resource Set(IEnumerable<string> items)
    {
        var r = new Resource { Name = "gpus", Set = new ValueSet() };
        r.Set.Items.AddRange(items.Distinct());
        return r;
    }

    private static IEnumerable<List<T>> ShrinkList<T>(List<T> list)
    {
        for (var i = 0; i < list.Count; i++)
        {
            var shorter = new List<T>(list);
            shorter.RemoveAt(i);
            yield return shorter;
        }
    }

    private static readonly Arbitrary<List<(bool Add, Resource Resource)>> Steps = Arb.From(
        Gen.ListOf(from add in Gen.Frequency((3, Gen.Constant(true)), (2, Gen.Constant(false))) from r in OneResource select (add, r))
            .Select(l => l.ToList()),
        ShrinkList);

    [Fact]
    public void Matches_the_exact_oracle_after_every_step_of_any_sequence() =>
        Prop.ForAll(Steps, steps =>
        {
            var bag = new ResourceBag();
            var oracle = ResourceSet.Empty;
            foreach (var (add, r) in steps)
            {
                if (add)
                {
                    bag.Add([r]);
                    oracle += ResourceSet.From([r]);
                }
                else
                {
                    bag.Subtract([r]);
                    oracle -= ResourceSet.From([r]);
                }
                if (!ResourceSet.From(bag.ToResources()).Equals(oracle) || bag.IsEmpty != oracle.IsEmpty)
                {
                    return false;
                }
            }
            return true;
        }).QuickCheckThrowOnFailure();

    [Fact]
    public void Containment_and_shortfall_agree_with_the_oracle() =>
        Prop.ForAll(Arb.From(from a in Gen.ListOf(OneResource) from b in Gen.ListOf(OneResource) select (a.ToList(), b.ToList())), p =>
        {
            var (have, need) = p;
            var bag = new ResourceBag(have);
            var fits = ResourceSet.From(have).Contains(ResourceSet.From(need));
            return bag.Contains(need) == fits && (bag.FindShortfall(need) is null) == fits;
        }).QuickCheckThrowOnFailure();

    [Fact]
    public void Adding_then_subtracting_a_bag_gives_back_the_original() =>
        Prop.ForAll(Arb.From(from a in Gen.ListOf(OneResource) from b in Gen.ListOf(OneResource) select (a.ToList(), b.ToList())), p =>
        {
            var a = new ResourceBag(p.Item1);
            var sum = a.Clone();
            // Only scalars come back exactly after a subtraction (ranges and sets unite: a value
            // both sides had is removed once), as in the oracle.
            var b = new ResourceBag(p.Item2.Where(r => r.ValueCase == Resource.ValueOneofCase.Scalar));
            sum.Add(b);
            sum.Subtract(b);
            return sum.SameAs(a) && sum.ToString() == a.ToString();
        }).QuickCheckThrowOnFailure();

    [Fact]
    public void A_thousand_fractional_grants_and_returns_leave_the_agent_exactly_whole()
    {
        var agent = new ResourceBag([new Resource { Name = "cpus", Scalar = 8 }, new Resource { Name = "mem", Scalar = 1024 }]);
        var total = agent.Clone();
        var grants = Enumerable.Range(0, 1000).Select(i => new Resource { Name = "cpus", Scalar = (i % 7 + 1) / 1000.0 }).ToList();
        foreach (var g in grants)
        {
            agent.Subtract([g]);
        }
        Assert.Equal("cpus:4.003;mem:1024", agent.ToString());
        Assert.Equal("cpus: needs 4.004, only 4.003 offered", agent.FindShortfall([new Resource { Name = "cpus", Scalar = 4.004 }]));
        foreach (var g in grants)
        {
            agent.Add([g]);
        }
        Assert.True(agent.SameAs(total));
        Assert.Equal("cpus:8;mem:1024", agent.ToString());
    }
}
