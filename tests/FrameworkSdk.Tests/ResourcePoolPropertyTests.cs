using FsCheck;
using FsCheck.Fluent;
using Sched.V1;
using Scheduler.Protocol.Resources;
using Xunit;

namespace Scheduler.FrameworkSdk.Tests;

/// <summary>
/// The SDK's offer pool computes in the protocol's fixed point: carving fractional quantities
/// conserves the offer to the thousandth, with no tolerance either way.
/// </summary>
public sealed class ResourcePoolPropertyTests
{
    private static IEnumerable<List<T>> ShrinkList<T>(List<T> list)
    {
        for (var i = 0; i < list.Count; i++)
        {
            var shorter = new List<T>(list);
            shorter.RemoveAt(i);
            yield return shorter;
        }
    }

    private static readonly Arbitrary<(int CpusMilli, List<int> Asks)> Carves = Arb.From(
        from cpus in Gen.Choose(1, 64_000)
        from asks in Gen.ListOf(Gen.Choose(1, 3_000))
        select (cpus, asks.ToList()),
        p => ShrinkList(p.Item2).Select(a => (p.Item1, a)));

    [Fact]
    public void Carving_conserves_the_offer_exactly() =>
        Prop.ForAll(Carves, p =>
        {
            var pool = new ResourcePool([new Resource { Name = "cpus", Scalar = p.CpusMilli / 1000.0 }]);
            long carved = 0;
            foreach (var ask in p.Asks)
            {
                var before = FixedScalar.ToFixed(pool.Scalar("cpus"));
                var pieces = pool.CarveScalar("cpus", ask / 1000.0);
                if (pieces is null)
                {
                    // Refused only when it really does not fit.
                    if (before >= ask)
                    {
                        return false;
                    }
                    continue;
                }
                carved += pieces.Sum(r => FixedScalar.ToFixed(r.Scalar));
            }
            return carved + FixedScalar.ToFixed(pool.Scalar("cpus")) == p.CpusMilli;
        }).QuickCheckThrowOnFailure();

    [Fact]
    public void A_request_one_thousandth_over_what_is_left_does_not_fit()
    {
        // With a tolerance of 0.0005 a pool holding 0.3 (as 0.1 + 0.2 in doubles) had to be
        // trusted to round right; in fixed point 0.301 simply does not fit and 0.3 does.
        var pool = new ResourcePool([new Resource { Name = "cpus", Scalar = 0.1 }, new Resource { Name = "cpus", Scalar = 0.2 }]);
        Assert.Null(pool.CarveScalar("cpus", 0.301));
        Assert.False(pool.Contains([new Resource { Name = "cpus", Scalar = 0.301 }]));
        Assert.True(pool.Contains([new Resource { Name = "cpus", Scalar = 0.3 }]));
        var pieces = pool.CarveScalar("cpus", 0.3);
        Assert.NotNull(pieces);
        Assert.Equal(300, pieces.Sum(r => FixedScalar.ToFixed(r.Scalar)));
        Assert.Equal(0, pool.Scalar("cpus"));
        Assert.Empty(pool.Items);
    }
}
