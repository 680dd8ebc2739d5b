using Sched.V1;
using Scheduler.Master.State;
using Xunit;

namespace Scheduler.Master.Tests.Scale;

public sealed class SharedStateTests
{
    [Fact]
    public void Equal_plain_scalars_share_one_object_and_others_are_left_alone()
    {
        var pool = new SharedResources();
        var a = pool.Intern(new Resource { Name = "cpus", Scalar = 0.01 }, "web");
        var b = pool.Intern(new Resource { Name = "cpus", Scalar = 0.01 }, "web");
        var otherRole = pool.Intern(new Resource { Name = "cpus", Scalar = 0.01 }, "batch");
        var reserved = new Resource { Name = "cpus", Scalar = 0.01, Reservation = new Reservation { Role = "web" } };
        Assert.Same(a, b);
        Assert.NotSame(a, otherRole);
        Assert.Equal("web", a.AllocationRole);
        Assert.Equal("batch", otherRole.AllocationRole);
        Assert.Same(reserved, pool.Intern(reserved, "web"));
        Assert.NotSame(a, pool.Intern(new Resource { Name = "cpus", Scalar = 0.02 }, "web"));
    }

    [Fact]
    public void Lists_of_pooled_resources_are_one_shared_array_and_others_are_their_own()
    {
        var pool = new SharedResources();
        static List<Resource> Plain() => [new Resource { Name = "cpus", Scalar = 0.01 }, new Resource { Name = "mem", Scalar = 1 }];
        var first = Plain();
        var a = pool.InternAll(first, "web");
        var b = pool.InternAll(Plain(), "web");
        Assert.Same(a, b);
        Assert.Same(a[0], first[0]); // interned in place too
        Assert.NotSame(a, pool.InternAll(Plain(), "batch"));
        Assert.NotSame(a, pool.InternAll([Plain()[1], Plain()[0]], "web")); // order matters
        List<Resource> withVolume = [new Resource { Name = "cpus", Scalar = 0.01 }, new Resource { Name = "disk", Scalar = 10, Reservation = new Reservation { Role = "web" } }];
        var own = pool.InternAll(withVolume, "web");
        Assert.NotSame(own, pool.InternAll([withVolume[0], withVolume[1].Clone()], "web"));
        Assert.Equal("web", own[1].AllocationRole);
    }

    [Fact]
    public async Task Agents_of_one_shape_share_their_resources_and_keep_sharing_after_re_registering()
    {
        await using var cluster = await Scheduler.Master.Tests.Harness.Cluster.StartAsync();
        var a = await cluster.AddAgentAsync(cpus: 8, mem: 16384, hostname: "rack1-a");
        var b = await cluster.AddAgentAsync(cpus: 8, mem: 16384, hostname: "rack1-b");
        var other = await cluster.AddAgentAsync(cpus: 2, mem: 16384, hostname: "small");
        async Task<(IReadOnlyList<Resource> Total, IReadOnlyList<Resource> Configured)> Held(string id) =>
            await cluster.Master.Loop.InvokeAsync(l => l.FindAgent(id) is { } e ? (e.Resources.Total, (IReadOnlyList<Resource>)e.Info.Resources) : throw new InvalidOperationException($"no agent {id}"));

        var (totalA, configuredA) = await Held(a.AgentId);
        var (totalB, configuredB) = await Held(b.AgentId);
        var (totalOther, _) = await Held(other.AgentId);
        Assert.Same(totalA, totalB);
        Assert.Equal(2, configuredA.Count);
        Assert.Same(configuredA[0], configuredB[0]);
        Assert.Same(configuredA[1], configuredB[1]);
        Assert.NotSame(totalA, totalOther);
        Assert.Same(configuredA[1], totalOther[1]); // the same mem, shared across shapes
        Assert.Equal(8, totalA.Single(r => r.Name == "cpus").Scalar);

        // A re-registration on a new stream parses the agent's info afresh; it is shared again.
        await a.DisconnectAsync();
        await a.ConnectAsync();
        var (again, configuredAgain) = await Held(a.AgentId);
        Assert.Same(totalB, again);
        Assert.Same(configuredB[0], configuredAgain[0]);
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public void String_pool_returns_the_first_copy_and_skips_long_strings()
    {
        var pool = new StringPool();
        var first = new string("the command exited with status 0".AsSpan());
        var second = new string("the command exited with status 0".AsSpan());
        Assert.NotSame(first, second);
        Assert.Same(first, pool.Intern(first));
        Assert.Same(first, pool.Intern(second));
        var longText = new string('x', StringPool.MaxLength + 1);
        Assert.Same(longText, pool.Intern(longText));
    }

    [Fact]
    public void Offer_book_indexes_follow_adds_and_retirements()
    {
        var book = new OfferBook();
        OutstandingOffer Make(string id, string agent, string fw) => new(new Offer { Id = id, AgentId = agent, FrameworkId = fw }, null);
        book.Add(Make("o1", "a1", "f1"));
        book.Add(Make("o2", "a1", "f2"));
        book.Add(Make("o3", "a2", "f1"));
        Assert.Equal(["o1", "o2"], book.ForAgent("a1").Select(o => o.Offer.Id).Order());
        Assert.Equal(["o1", "o3"], book.ForFramework("f1").Select(o => o.Offer.Id).Order());
        foreach (var offer in book.ForAgent("a1"))
        {
            book.Retire(offer.Offer.Id, "test");
        }
        Assert.Empty(book.ForAgent("a1"));
        Assert.Equal(["o3"], book.ForFramework("f1").Select(o => o.Offer.Id));
        Assert.Empty(book.ForFramework("f2"));
        Assert.Equal("test", book.RetiredReason("o2"));
        Assert.Equal(1, book.Count);
    }
}
