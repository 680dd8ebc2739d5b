using FsCheck;
using FsCheck.Fluent;
using Sched.V1;
using Scheduler.Allocation.Internal;
using Scheduler.Allocation.Sorting;
using Scheduler.Protocol.Resources;
using Xunit;

namespace Scheduler.Allocation.Tests.Sorting;

/// <summary>
/// The contract every role sorter keeps (see <see cref="IRoleSorter"/>): the walk visits exactly
/// the offerable clients of the entered subtrees, each once; it stops at the client taken;
/// allocations are counted exactly on every ancestor; removed clients and roles are gone. One
/// subclass per implementation.
/// </summary>
public abstract class RoleSorterContractTests
{
    private readonly NameTable _names = new();
    private readonly PoolTable _pools = new();
    private int _frameworks;

    private protected abstract IRoleSorter CreateSorter();

    /// <summary>A sorter with roles a, a/b, c and clients f1, f2 (a), f3 (a/b), f4, f5 (c); cluster total cpus:100;mem:100.</summary>
    private protected (IRoleSorter Sorter, Dictionary<string, RoleNode> Roles, Dictionary<string, ClientNode> Clients) Build()
    {
        var sorter = CreateSorter();
        var roles = new Dictionary<string, RoleNode>();
        roles["a"] = sorter.AddRole("a", sorter.Root);
        roles["a/b"] = sorter.AddRole("a/b", roles["a"]);
        roles["c"] = sorter.AddRole("c", sorter.Root);
        var clients = new Dictionary<string, ClientNode>
        {
            ["f1"] = AddClient(sorter, roles["a"], "f1"),
            ["f2"] = AddClient(sorter, roles["a"], "f2"),
            ["f3"] = AddClient(sorter, roles["a/b"], "f3"),
            ["f4"] = AddClient(sorter, roles["c"], "f4"),
            ["f5"] = AddClient(sorter, roles["c"], "f5"),
        };
        sorter.AddTotal(_names.Intern("cpus", CellKind.Scalar), 100_000);
        sorter.AddTotal(_names.Intern("mem", CellKind.Scalar), 100_000);
        sorter.Sort();
        return (sorter, roles, clients);
    }

    private protected ClientNode AddClient(IRoleSorter sorter, RoleNode role, string id)
    {
        var spec = new FrameworkSpec(id, [role.Name], [], [], [], []);
        return sorter.AddClient(new FrameworkEntry(_frameworks++, spec), role);
    }

    private protected Bag Scalars(string text) =>
        Bag.FromProto(ResourceSet.Parse(text).ToList(), _names, _pools, _ => throw new InvalidOperationException("unreserved only"));

    /// <summary>Every client in walk order (takes none).</summary>
    private protected static List<string> Order(IRoleSorter sorter)
    {
        var walk = new RecordingWalk();
        Assert.Null(sorter.First(walk));
        return walk.Visited;
    }

    [Fact]
    public void The_walk_visits_every_offerable_client_exactly_once()
    {
        var (sorter, _, clients) = Build();
        var order = Order(sorter);
        Assert.Equal(clients.Keys.Order(), order.Order());
    }

    [Fact]
    public void Inactive_suppressed_and_removed_clients_are_not_visited()
    {
        var (sorter, roles, clients) = Build();
        clients["f1"].Framework.Active = false;
        sorter.UpdateOfferable(clients["f1"]);
        clients["f3"].Suppressed = true;
        sorter.UpdateOfferable(clients["f3"]);
        sorter.RemoveClient(clients["f4"]);
        sorter.Sort();
        Assert.Equal(["f2", "f5"], Order(sorter).Order());
        Assert.Equal(0, roles["a/b"].Offerable);

        clients["f1"].Framework.Active = true;
        sorter.UpdateOfferable(clients["f1"]);
        sorter.Sort();
        Assert.Equal(["f1", "f2", "f5"], Order(sorter).Order());
    }

    [Fact]
    public void A_removed_role_and_its_clients_are_gone()
    {
        var (sorter, roles, clients) = Build();
        sorter.RemoveClient(clients["f3"]);
        sorter.RemoveRole(roles["a/b"]);
        sorter.Sort();
        Assert.Equal(["f1", "f2", "f4", "f5"], Order(sorter).Order());
        Assert.Equal(2, roles["a"].Clients);
        Assert.Equal(4, sorter.Root.Clients);
    }

    [Fact]
    public void The_walk_stops_at_the_client_taken()
    {
        var (sorter, _, _) = Build();
        var all = Order(sorter);
        var walk = new RecordingWalk { TakeId = all[2] };
        var taken = sorter.First(walk);
        Assert.Equal(all[2], taken?.Framework.Id);
        Assert.Equal(all.Take(3), walk.Visited);
    }

    [Fact]
    public void A_role_not_entered_is_skipped_whole_and_scope_is_carried_down()
    {
        var (sorter, _, _) = Build();
        var walk = new RecordingWalk { Skip = "a" };
        Assert.Null(sorter.First(walk));
        Assert.Equal(["f4", "f5"], walk.Visited.Order());

        var scoped = new RecordingWalk { ScopeAt = "a" };
        sorter.First(scoped);
        Assert.Equal(["f1", "f2", "f3"], scoped.InScope.Order());
    }

    private static readonly Arbitrary<List<(int Client, int Cpus, int Mem, bool Release)>> Allocations = Arb.From(
        Gen.ListOf(from c in Gen.Choose(0, 4) from cpus in Gen.Choose(0, 5_000) from mem in Gen.Choose(0, 5_000) from release in Gen.Elements(false, false, true)
                   select (c, cpus, mem, release)).Select(l => l.ToList()),
        list => Enumerable.Range(0, list.Count).Select(i => list.Where((_, j) => j != i).ToList()));

    [Fact]
    public void Allocations_are_counted_exactly_on_every_ancestor() =>
        Prop.ForAll(Allocations, steps =>
        {
            var (sorter, roles, clients) = Build();
            var ids = clients.Keys.Order().ToArray();
            var held = ids.ToDictionary(id => id, _ => (Cpus: 0L, Mem: 0L));
            foreach (var (c, cpus, mem, release) in steps)
            {
                var id = ids[c];
                var (hc, hm) = held[id];
                if (release)
                {
                    // Release what is held, at most.
                    var rc = Math.Min(hc, cpus);
                    var rm = Math.Min(hm, mem);
                    sorter.Unallocated(clients[id], Scalars($"cpus:{FixedScalar.Format(rc)};mem:{FixedScalar.Format(rm)}"));
                    held[id] = (hc - rc, hm - rm);
                }
                else
                {
                    sorter.Allocated(clients[id], Scalars($"cpus:{FixedScalar.Format(cpus)};mem:{FixedScalar.Format(mem)}"));
                    held[id] = (hc + cpus, hm + mem);
                }
            }

            var cpusName = _names.Find("cpus");
            var memName = _names.Find("mem");
            bool Matches(SortNode node, IEnumerable<string> under) =>
                Vec.Get(node.Allocated, cpusName) == under.Sum(id => held[id].Cpus)
                && Vec.Get(node.Allocated, memName) == under.Sum(id => held[id].Mem);

            sorter.Sort();
            return ids.All(id => Matches(clients[id], [id]))
                && Matches(roles["a"], ["f1", "f2", "f3"]) && Matches(roles["a/b"], ["f3"]) && Matches(roles["c"], ["f4", "f5"])
                && Matches(sorter.Root, ids)
                && Order(sorter).Order().SequenceEqual(ids);
        }).QuickCheckThrowOnFailure();

    [Fact]
    public void Dominant_share_is_against_the_total_and_leaves_out_excluded_names()
    {
        var (sorter, _, _) = Build();
        Assert.Equal(0.25, sorter.DominantShare([25_000, 10_000]));
        sorter.ExcludeFromFairness([true]);
        Assert.Equal(0.10, sorter.DominantShare([25_000, 10_000]), 9);
    }

    /// <summary>Records the clients visited; takes the one named <see cref="TakeId"/>; skips role <see cref="Skip"/>.</summary>
    private protected sealed class RecordingWalk : ISortWalk
    {
        public List<string> Visited { get; } = [];

        public List<string> InScope { get; } = [];

        public string? TakeId { get; init; }

        public string? Skip { get; init; }

        public string? ScopeAt { get; init; }

        public bool Enter(RoleNode role, bool scope, out bool innerScope)
        {
            innerScope = scope || role.Name == ScopeAt;
            return role.Name != Skip;
        }

        public bool Take(ClientNode client, bool scope)
        {
            Visited.Add(client.Framework.Id);
            if (scope)
            {
                InScope.Add(client.Framework.Id);
            }

            return client.Framework.Id == TakeId;
        }
    }
}

/// <summary>The contract, for the DRF sorter, plus DRF's own order.</summary>
public sealed class DrfSorterContractTests : RoleSorterContractTests
{
    private protected override IRoleSorter CreateSorter() => new DrfSorter();

    [Fact]
    public void Lowest_dominant_share_goes_first_at_every_level()
    {
        var (sorter, _, clients) = Build();
        sorter.Allocated(clients["f1"], Scalars("cpus:30"));
        sorter.Allocated(clients["f4"], Scalars("mem:10"));
        sorter.Allocated(clients["f5"], Scalars("cpus:5"));
        sorter.Sort();
        // c (0.10: mem 10 of 100) before a (0.30); in c, f5 (0.05) before f4 (0.10); in a, the
        // sub-role a/b (0) before a's own group (0.30) as one unit, and in it f2 (0) before f1.
        Assert.Equal(["f5", "f4", "f3", "f2", "f1"], Order(sorter));
    }

    [Fact]
    public void Weights_divide_shares()
    {
        var (sorter, roles, clients) = Build();
        sorter.Allocated(clients["f1"], Scalars("cpus:30"));
        sorter.Allocated(clients["f4"], Scalars("cpus:20"));
        sorter.Sort();
        Assert.Equal("f5", Order(sorter)[0]);
        sorter.UpdateWeight(roles["a"], 3);
        sorter.Sort();
        // a: 0.30 / 3 = 0.10 now sorts before c (0.20), and a/b (0) first inside a.
        Assert.Equal(["f3", "f2", "f1", "f5", "f4"], Order(sorter));
    }

    [Fact]
    public void An_allocation_moves_the_client_at_once_without_a_full_sort()
    {
        var (sorter, _, clients) = Build();
        var first = Order(sorter)[0];
        sorter.Allocated(clients[first], Scalars("cpus:50"));
        Assert.NotEqual(first, Order(sorter)[0]);
        Assert.Equal(first, Order(sorter)[^1]);
    }
}

/// <summary>The contract, for the weighted random sorter, plus its own properties.</summary>
public sealed class RandomSorterContractTests : RoleSorterContractTests
{
    private protected override IRoleSorter CreateSorter() => new RandomSorter(new Random(7));

    [Fact]
    public void The_order_is_reproducible_from_the_seed_and_changes_between_sorts()
    {
        var (a, _, _) = Build();
        var (b, _, _) = Build();
        var ordersA = new List<string>();
        var ordersB = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            a.Sort();
            b.Sort();
            ordersA.Add(string.Join(',', Order(a)));
            ordersB.Add(string.Join(',', Order(b)));
        }

        Assert.Equal(ordersA, ordersB);
        Assert.True(ordersA.Distinct().Count() > 1);
    }

    [Fact]
    public void A_heavier_role_goes_first_in_proportion_to_its_weight()
    {
        var (sorter, roles, _) = Build();
        sorter.UpdateWeight(roles["a"], 3);
        var aFirst = 0;
        const int Sorts = 4000;
        for (var i = 0; i < Sorts; i++)
        {
            sorter.Sort();
            if (Order(sorter)[0] is "f1" or "f2" or "f3")
            {
                aFirst++;
            }
        }

        // Weight 3 against 1: first three times in four (seeded, so the count is fixed; the band is wide).
        Assert.InRange(aFirst / (double)Sorts, 0.70, 0.80);
    }
}
