using Sched.V1;
using Scheduler.Protocol.Resources;
using Xunit;

namespace Scheduler.Protocol.Tests.Resources;

public class ResourceSetTests
{
    private static ResourceSet R(string text) => ResourceSet.Parse(text);

    [Fact]
    public void Adds_and_subtracts_scalars_without_float_drift()
    {
        var sum = ResourceSet.Empty;
        for (var i = 0; i < 10; i++)
        {
            sum += R("cpus:0.1");
        }

        Assert.Equal(1.0, sum.Scalar("cpus"));
        Assert.Equal(1000, sum.ScalarFixed("cpus"));
        Assert.True((R("cpus:0.3") - R("cpus:0.1") - R("cpus:0.2")).IsEmpty);
    }

    [Fact]
    public void Ranges_merge_coalesce_and_split()
    {
        var merged = R("ports:[1-3]") + R("ports:[4-10]") + R("ports:[20-30]");
        Assert.Equal("ports:[1-10,20-30]", merged.ToString());

        var split = merged - R("ports:[5-6,25]");
        Assert.Equal("ports:[1-4,7-10,20-24,26-30]", split.ToString());
        Assert.True(merged.Contains(split));
        Assert.False(split.Contains(R("ports:[5]")));
        Assert.True(split.Contains(R("ports:[8-9,21]")));
    }

    [Fact]
    public void Range_arithmetic_handles_extremes()
    {
        var all = RangeSet.Of(new ValueRange(0, ulong.MaxValue));
        var rest = all.Subtract(RangeSet.Of(new ValueRange(0, 0), new ValueRange(ulong.MaxValue, ulong.MaxValue)));
        Assert.Equal(RangeSet.Of(new ValueRange(1, ulong.MaxValue - 1)), rest);
        Assert.Equal(ulong.MaxValue, all.ValueCount);
        Assert.True(all.Contains(ulong.MaxValue));
        Assert.Throws<ArgumentException>(() => RangeSet.Of(new ValueRange(3, 2)));
    }

    [Fact]
    public void Sets_union_and_difference()
    {
        var s = R("zones:{a,b}") + R("zones:{b,c}");
        Assert.Equal("zones:{a,b,c}", s.ToString());
        Assert.Equal("zones:{a,c}", (s - R("zones:{b,z}")).ToString());
        Assert.True(s.Contains(R("zones:{c,a}")));
        Assert.False(s.Contains(R("zones:{d}")));
    }

    [Fact]
    public void Subtraction_saturates_at_zero()
    {
        var d = R("cpus:1;mem:100") - R("cpus:3;gpus:1");
        Assert.Equal("mem:100", d.ToString());
    }

    [Fact]
    public void Reserved_and_unreserved_do_not_mix()
    {
        var agent = R("cpus:2;cpus(web):2");
        Assert.False(R("cpus:3").IsEmpty);
        Assert.False(agent.Contains(R("cpus:3")));
        Assert.True(agent.Contains(R("cpus(web):2")));
        Assert.False(agent.Contains(R("cpus(batch):1")));
        Assert.Equal(4, agent.Scalar("cpus"));
    }

    [Fact]
    public void Groups_by_reservation_and_allocation_role()
    {
        var set = R("cpus:1;mem:10;cpus(web):2;mem(eng/batch):3");
        var groups = set.ByReservationRole();
        Assert.Equal(["*", "web", "eng/batch"], groups.Keys);
        Assert.Equal("cpus:1;mem:10", groups["*"].ToString());
        Assert.Equal("cpus(web):2", groups["web"].ToString());

        var allocated = R("cpus:1").WithAllocationRole("web") + R("mem:5").WithAllocationRole("batch");
        var byRole = allocated.ByAllocationRole();
        Assert.Equal(1, byRole["web"].Scalar("cpus"));
        Assert.Equal(5, byRole["batch"].Scalar("mem"));
        Assert.True(allocated.WithAllocationRole(null).ByAllocationRole().ContainsKey(""));
    }

    [Fact]
    public void Usable_by_includes_ancestor_reservations_only()
    {
        var set = R("cpus:1;cpus(eng):2;cpus(eng/web):4;cpus(engineering):8;cpus(eng/batch):16");
        Assert.Equal(7, set.UsableBy("eng/web").Scalar("cpus"));
        Assert.Equal(3, set.UsableBy("eng").Scalar("cpus"));
        Assert.Equal(1, set.UsableBy("ops").Scalar("cpus"));
    }

    [Fact]
    public void Reserve_and_unreserve_convert_identity_but_keep_quantities()
    {
        var reserved = R("cpus:2;mem:64").WithReservation(new Reservation { Type = Reservation.Types.Type.Dynamic, Role = "web", Principal = "p" });
        Assert.Equal("cpus(web,dynamic,p):2;mem(web,dynamic,p):64", reserved.ToString());
        Assert.Equal(R("cpus:2;mem:64"), reserved.WithoutReservations());
    }

    [Fact]
    public void Validation_names_the_resource_and_the_problem()
    {
        Resource[] bad =
        [
            new() { Name = "cpus", Scalar = -1 },
            new() { Name = "mem", Scalar = double.NaN },
            new() { Name = "disk", Scalar = double.PositiveInfinity },
            new() { Name = "", Scalar = 1 },
            new() { Name = "ports", Ranges = new Ranges { Range = { new Sched.V1.Range { Begin = 1, End = 10 }, new Sched.V1.Range { Begin = 5, End = 6 } } } },
            new() { Name = "gpus", Scalar = 1, Reservation = new Reservation { Role = "", Type = Reservation.Types.Type.Static } },
            new() { Name = "x" },
        ];

        var errors = ResourceValidator.Validate(bad);
        Assert.Contains(errors, e => e.Contains("'cpus'") && e.Contains("negative"));
        Assert.Contains(errors, e => e.Contains("'mem'") && e.Contains("NaN"));
        Assert.Contains(errors, e => e.Contains("'disk'") && e.Contains("infinite"));
        Assert.Contains(errors, e => e.Contains("(unnamed)") && e.Contains("name is empty"));
        Assert.Contains(errors, e => e.Contains("'ports'") && e.Contains("overlap"));
        Assert.Contains(errors, e => e.Contains("'gpus'") && e.Contains("must not be empty"));
        Assert.Contains(errors, e => e.Contains("'x'") && e.Contains("no value"));
        var ex = Assert.Throws<InvalidResourceException>(() => ResourceSet.From(bad));
        Assert.Equal(errors.Count, ex.Errors.Count);
    }

    [Theory]
    [InlineData("cpus:1;cpus:[1-2]")]
    [InlineData("a:1;b:1;c:1;d:1;e:1;f:{x};f:2")]
    [InlineData("a:1;b:1;c:1;d:1;d:{y}")]
    public void A_name_has_one_value_type_in_a_list(string text)
    {
        var list = text.Split(';').SelectMany(ResourceText.Parse).ToList();
        Assert.Contains(ResourceValidator.Validate(list), e => e.Contains("one value type"));
    }

    [Fact]
    public void Extension_methods_work_on_proto_lists()
    {
        List<Resource> a = R("cpus:2;mem:100;ports:[1-10]").ToList();
        List<Resource> b = R("cpus:0.5;ports:[3-4]").ToList();
        Assert.Equal("cpus:1.5;mem:100;ports:[1-2,5-10]", a.Minus(b).FormatResources());
        Assert.Equal(2.5, a.Plus(b).ScalarSum("cpus"));
        Assert.True(a.ContainsAll(b));
        Assert.False(b.ContainsAll(a));
        Assert.Empty(a.Validate());
    }

    [Fact]
    public void Enumeration_gives_fresh_protos()
    {
        var set = R("cpus:2");
        set.First().Scalar = 100;
        Assert.Equal(2, set.Scalar("cpus"));
    }

    [Fact]
    public void Role_names()
    {
        Assert.Null(RoleName.Validate("eng/web"));
        Assert.NotNull(RoleName.Validate("/eng"));
        Assert.NotNull(RoleName.Validate("eng/.."));
        Assert.NotNull(RoleName.Validate("*"));
        Assert.Equal("eng", RoleName.Parent("eng/web"));
        Assert.Null(RoleName.Parent("eng"));
        Assert.True(RoleName.IsSelfOrDescendant("eng/web", "eng"));
        Assert.False(RoleName.IsSelfOrDescendant("engine", "eng"));
        Assert.Equal(["a/b/c", "a/b", "a"], RoleName.SelfAndAncestors("a/b/c"));
    }
}
