using Sched.V1;
using Scheduler.Protocol.Resources;
using Xunit;

namespace Scheduler.Protocol.Tests.Resources;

public class ResourceTextTests
{
    [Fact]
    public void Parses_the_agent_syntax()
    {
        var set = ResourceSet.Parse("cpus:4;mem:4096;disk:10000;ports:[31000-32000];gpus:1");

        Assert.Equal(4, set.Scalar("cpus"));
        Assert.Equal(4096, set.Scalar("mem"));
        Assert.Equal(10000, set.Scalar("disk"));
        Assert.Equal(1, set.Scalar("gpus"));
        Assert.Equal(RangeSet.Of(new ValueRange(31000, 32000)), set.Ranges("ports"));
        Assert.True(set.All(r => r.Reservation is null));
    }

    [Fact]
    public void Parses_role_reservations_sets_and_whitespace()
    {
        var list = ResourceText.Parse(" cpus(eng/web) : 2 ; cpus:1.5; zones:{a, b}; ports(*):[1-2, 5];");

        Assert.Equal(4, list.Count);
        Assert.Equal("cpus", list[0].Name);
        Assert.Equal(Reservation.Types.Type.Static, list[0].Reservation.Type);
        Assert.Equal("eng/web", list[0].Reservation.Role);
        Assert.Equal(2, list[0].Scalar);
        Assert.Null(list[1].Reservation);
        Assert.Equal(["a", "b"], list[2].Set.Items);
        Assert.Null(list[3].Reservation);
        Assert.Equal(2, list[3].Ranges.Range.Count);
        Assert.Equal(5ul, list[3].Ranges.Range[1].Begin);
        Assert.Equal(5ul, list[3].Ranges.Range[1].End);
    }

    [Fact]
    public void Parses_dynamic_reservations()
    {
        var r = Assert.Single(ResourceText.Parse("mem(batch,dynamic,alice):512"));
        Assert.Equal(Reservation.Types.Type.Dynamic, r.Reservation.Type);
        Assert.Equal("batch", r.Reservation.Role);
        Assert.Equal("alice", r.Reservation.Principal);
        Assert.Equal("mem(batch,dynamic,alice):512", ResourceText.Format([r]));
    }

    [Fact]
    public void Empty_text_is_no_resources()
    {
        Assert.Empty(ResourceText.Parse(""));
        Assert.True(ResourceSet.Parse("  ").IsEmpty);
    }

    [Fact]
    public void Same_entries_add_up()
    {
        var set = ResourceSet.Parse("cpus:1;cpus:0.5;cpus(web):2;ports:[1-3];ports:[4-6]");
        Assert.Equal(3.5, set.Scalar("cpus"));
        Assert.Equal(1.5, set.Unreserved().Scalar("cpus"));
        Assert.Equal(RangeSet.Of(new ValueRange(1, 6)), set.Ranges("ports"));
    }

    [Theory]
    [InlineData("cpus", "no ':'")]
    [InlineData("cpus:abc", "'abc' is not a number")]
    [InlineData("cpus:-1", "finite non-negative")]
    [InlineData("cpus:NaN", "finite non-negative")]
    [InlineData("cpus:Infinity", "finite non-negative")]
    [InlineData("mem:1e99", "larger than the largest quantity a resource can have")]
    [InlineData(":4", "the name is empty")]
    [InlineData("cp us:4", "contains ' '")]
    [InlineData("cpus:", "the value is empty")]
    [InlineData("cpus:1;;mem:2", "entry 2")]
    [InlineData("ports:[1-2", "not closed with ']'")]
    [InlineData("ports:[5-2]", "begin after its end")]
    [InlineData("ports:[a-b]", "not a range")]
    [InlineData("ports:[1-5,3-8]", "overlap")]
    [InlineData("zones:{a,}", "set item is empty")]
    [InlineData("zones:{a", "not closed with '}'")]
    [InlineData("cpus(web:2", "not closed with ')'")]
    [InlineData("cpus():2", "must not be empty")]
    [InlineData("cpus(a//b):2", "empty segment")]
    [InlineData("cpus(web,static):2", "not a reservation")]
    [InlineData("cpus:1;cpus:[1-2]", "one value type")]
    public void Malformed_text_gets_a_clear_error(string text, string expected)
    {
        var e = Assert.Throws<ResourceFormatException>(() => ResourceSet.Parse(text));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.Contains(text, e.Message, StringComparison.Ordinal);
        Assert.False(ResourceSet.TryParse(text, out _, out var error));
        Assert.Equal(e.Message, error);
    }

    [Fact]
    public void Syntax_errors_state_the_expected_syntax()
    {
        var e = Assert.Throws<ResourceFormatException>(() => ResourceText.Parse("cpus=4"));
        Assert.Contains("Expected NAME[(ROLE)]:VALUE", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Formats_back_in_the_same_syntax()
    {
        const string text = "cpus:0.5;mem:4096;ports:[31000-32000,33000-33010];zones:{a,b};cpus(web):2";
        Assert.Equal(text, ResourceSet.Parse(text).ToString());
    }

    [Fact]
    public void Scalars_keep_three_decimals()
    {
        Assert.Equal("cpus:0.123", ResourceSet.Parse("cpus:0.1234").ToString());
        Assert.Equal("cpus:0.124", ResourceSet.Parse("cpus:0.1235").ToString());
    }
}
