using Sched.V1;
using Scheduler.Agent.Resources;
using Xunit;

namespace Scheduler.Agent.Tests;

public class ResourceTextTests
{
    [Fact]
    public void Parses_scalars_ranges_sets_and_roles()
    {
        var r = ResourceText.ParseResources("cpus:4;mem:4096;disk:10000;ports:[31000-32000,40000-40010];cpus(web):2;gpus:{a,b}");
        Assert.Equal(6, ResourceText.Scalar(r, "cpus"));
        Assert.Equal(4096, ResourceText.Scalar(r, "mem"));
        var ports = r.Single(x => x.Name == "ports").Ranges.Range;
        Assert.Equal(2, ports.Count);
        Assert.Equal(31000UL, ports[0].Begin);
        Assert.Equal("web", r.Single(x => x.Name == "cpus" && x.Reservation is not null).Reservation.Role);
        Assert.Equal(["a", "b"], r.Single(x => x.Name == "gpus").Set.Items);
    }

    [Theory]
    [InlineData("cpus", "'cpus'")]
    [InlineData("cpus:-1", "cpus:-1")]
    [InlineData("ports:[5-3]", "ports:[5-3]")]
    [InlineData("mem(:3", "mem(:3")]
    public void Bad_resources_name_the_problem(string text, string expected)
    {
        var e = Assert.ThrowsAny<FormatException>(() => ResourceText.ParseResources(text));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Attributes_are_typed()
    {
        var a = ResourceText.ParseAttributes("rack:r1;level:3;zones:{a,b}");
        Assert.Equal("r1", a[0].Text);
        Assert.Equal(3, a[1].Scalar);
        Assert.Equal(2, a[2].Set.Items.Count);
    }

    [Fact]
    public void Detection_fills_what_is_not_given()
    {
        var dir = Directory.CreateTempSubdirectory().FullName;
        try
        {
            var r = ResourceDetector.Detect(dir, "cpus:1.5");
            Assert.Equal(1.5, ResourceText.Scalar(r, "cpus"));
            var total = ResourceDetector.TotalMemoryMiB();
            Assert.Equal(Math.Max(total / 2, total - 1024), ResourceText.Scalar(r, "mem"));
            Assert.True(ResourceText.Scalar(r, "disk") > 0);
            Assert.Equal(31000UL, r.Single(x => x.Name == "ports").Ranges.Range[0].Begin);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
