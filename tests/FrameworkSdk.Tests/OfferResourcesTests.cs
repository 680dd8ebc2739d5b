using FsCheck;
using FsCheck.Fluent;
using Sched.V1;
using Xunit;

namespace Scheduler.FrameworkSdk.Tests;

public sealed class OfferResourcesTests
{
    private static Offer MakeOffer(double cpus, double mem, params (ulong Begin, ulong End)[] ports)
    {
        var offer = new Offer { Id = "o1", AgentId = "agent-1", Role = "eng" };
        offer.Resources.Add(new Resource { Name = "cpus", Scalar = cpus });
        offer.Resources.Add(new Resource { Name = "mem", Scalar = mem });
        if (ports.Length > 0)
        {
            var r = new Resource { Name = "ports", Ranges = new Ranges() };
            r.Ranges.Range.Add(ports.Select(p => new Sched.V1.Range { Begin = p.Begin, End = p.End }));
            offer.Resources.Add(r);
        }
        return offer;
    }

    [Fact]
    public void Carves_tasks_until_the_offer_is_used_up()
    {
        var left = new OfferResources(MakeOffer(2, 1000));
        var built = new List<TaskInfo>();
        for (var i = 0; i < 10 && left.TryCarve(new TaskBuilder($"t{i}").Shell("true").Cpus(0.5).Mem(200), out var task); i++)
        {
            built.Add(task);
        }
        Assert.Equal(4, built.Count);
        Assert.All(built, t => Assert.Equal("agent-1", t.AgentId));
        Assert.All(built, t => Assert.All(t.Resources, r => Assert.Equal("eng", r.AllocationRole)));
        Assert.Equal(0, left.Cpus);
        Assert.Equal(200, left.Mem);
    }

    [Fact]
    public void Picks_concrete_ports_and_joins_adjacent_ones()
    {
        var offer = MakeOffer(4, 4096, (31000, 31001), (31005, 31010));
        var task = new TaskBuilder("web").Shell("serve").Cpus(1).Mem(64).Ports(4).Build(offer);
        var ports = task.Resources.Single(r => r.Name == "ports").Ranges.Range;
        Assert.Equal([(31000UL, 31001UL), (31005UL, 31006UL)], ports.Select(r => (r.Begin, r.End)));
        Assert.True(OfferResources.Fits(task, offer));
        var left = OfferResources.Remainder(offer, [task]);
        Assert.Equal([(31007UL, 31010UL)], left.Single(r => r.Name == "ports").Ranges.Range.Select(r => (r.Begin, r.End)));
    }

    [Fact]
    public void Uses_reserved_resources_of_the_role_before_unreserved_ones()
    {
        var offer = MakeOffer(1, 512);
        offer.Resources.Add(new Resource { Name = "cpus", Scalar = 1.5, Reservation = new Reservation { Type = Reservation.Types.Type.Static, Role = "eng" } });
        var task = new TaskBuilder("t").Shell("true").Cpus(2).Mem(100).Build(offer);
        var cpus = task.Resources.Where(r => r.Name == "cpus").ToList();
        Assert.Equal(1.5, cpus.Single(r => r.Reservation is not null).Scalar);
        Assert.Equal(0.5, cpus.Single(r => r.Reservation is null).Scalar);
        Assert.True(OfferResources.Fits(task, offer));
    }

    [Fact]
    public void A_task_that_does_not_fit_is_refused_and_takes_nothing()
    {
        var offer = MakeOffer(1, 128);
        var left = new OfferResources(offer);
        Assert.False(left.TryCarve(new TaskBuilder("big").Shell("true").Cpus(0.5).Mem(256), out _));
        Assert.Equal(1, left.Cpus);
        var e = Assert.Throws<InvalidOperationException>(() => new TaskBuilder("big").Shell("true").Cpus(2).Build(offer));
        Assert.Contains("does not fit", e.Message, StringComparison.Ordinal);
        var explicitTask = new TaskBuilder("x").Shell("true").Cpus(0.5).Mem(100).Build();
        Assert.True(OfferResources.Fits(explicitTask, offer));
        Assert.Throws<ArgumentException>(() => OfferResources.Remainder(offer, [explicitTask, explicitTask.Clone()]));
    }

    [Fact]
    public void Reserved_task_resources_do_not_fit_unreserved_offers()
    {
        var offer = MakeOffer(4, 4096);
        var task = new TaskBuilder("t").Shell("true").Build();
        task.Resources.Add(new Resource { Name = "cpus", Scalar = 1, Reservation = new Reservation { Role = "eng" } });
        Assert.False(OfferResources.Fits(task, offer));
    }

    [Fact]
    public void Carving_never_over_commits_and_conserves_the_offer()
    {
        var gen = from cpus in Gen.Choose(1, 64)
                  from mem in Gen.Choose(64, 16384)
                  from asks in Gen.ListOf(Gen.Zip(Gen.Choose(1, 40), Gen.Choose(1, 4000)))
                  select (cpus / 4.0, (double)mem, asks.Select(a => (a.Item1 / 10.0, (double)a.Item2)).ToList());
        Prop.ForAll(gen.ToArbitrary(), input =>
        {
            var (cpus, mem, asks) = input;
            var offer = MakeOffer(cpus, mem);
            var left = new OfferResources(offer);
            var tasks = new List<TaskInfo>();
            foreach (var (c, m) in asks)
            {
                if (left.TryCarve(new TaskBuilder($"t{tasks.Count}").Shell("true").Cpus(c).Mem(m), out var task))
                {
                    tasks.Add(task);
                }
            }
            var usedCpus = tasks.Sum(t => OfferResources.Scalar(t.Resources, "cpus"));
            var usedMem = tasks.Sum(t => OfferResources.Scalar(t.Resources, "mem"));
            return usedCpus <= cpus + 1e-9 && usedMem <= mem + 1e-9
                && Math.Abs(usedCpus + left.Cpus - cpus) < 1e-6 && Math.Abs(usedMem + left.Mem - mem) < 1e-6
                && tasks.All(t => OfferResources.Fits(t, offer));
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Describe_prints_the_mesos_syntax()
    {
        var offer = MakeOffer(1.5, 256, (31000, 31002));
        Assert.Equal("cpus:1.5;mem:256;ports:[31000-31002]", OfferResources.Describe(offer.Resources));
    }
}
