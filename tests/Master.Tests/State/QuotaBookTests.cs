using Sched.V1;
using Scheduler.Master.Registry;
using Scheduler.Master.State;
using Xunit;

namespace Scheduler.Master.Tests.State;

/// <summary>The quota book on its own: every change returns the registry write that makes it
/// durable, an empty quota removes the role's, and a role's limits include its ancestors'.</summary>
public sealed class QuotaBookTests
{
    private static QuotaInfo Quota(string role, double? guarantee = null, double? limit = null)
    {
        var q = new QuotaInfo { Role = role };
        if (guarantee is { } g)
        {
            q.Guarantees.Add(new Resource { Name = "cpus", Scalar = g });
        }
        if (limit is { } l)
        {
            q.Limits.Add(new Resource { Name = "cpus", Scalar = l });
        }
        return q;
    }

    [Fact]
    public void Setting_a_quota_returns_its_write_and_an_empty_one_deletes_it()
    {
        var book = new QuotaBook();
        var put = book.Set(Quota("eng", guarantee: 1, limit: 2));
        Assert.Equal(RegistryRecords.QuotaKey("eng"), put.Key);
        Assert.NotNull(put.Value);
        Assert.False(book.IsEmpty);

        var delete = book.Set(Quota("eng"));

        Assert.Equal(RegistryRecords.QuotaKey("eng"), delete.Key);
        Assert.Null(delete.Value);
        Assert.True(book.IsEmpty);
        Assert.Null(book.Quota("eng"));
    }

    [Fact]
    public void A_roles_limits_are_its_own_and_its_ancestors_nearest_first()
    {
        var book = new QuotaBook();
        book.Set(Quota("eng", limit: 10));
        book.Set(Quota("eng/web", limit: 4));
        book.Set(Quota("eng/web/api", guarantee: 1)); // a guarantee only: no limit
        book.Set(Quota("ops", limit: 1));

        Assert.Equal(["eng/web", "eng"], book.LimitsOver("eng/web/api").Select(q => q.Role));
        Assert.Equal(["eng"], book.LimitsOver("eng/db").Select(q => q.Role));
        Assert.Empty(book.LimitsOver("engineering"));
    }

    [Fact]
    public void A_quota_is_refused_with_the_reason_before_anything_changes()
    {
        Assert.Contains("exceeds its limit", QuotaBook.Problem(Quota("eng", guarantee: 3, limit: 2)), StringComparison.Ordinal);
        var ranged = Quota("eng");
        ranged.Limits.Add(new Resource { Name = "ports", Ranges = new Ranges { Range = { new Sched.V1.Range { Begin = 1, End = 2 } } } });
        Assert.Contains("is not a scalar", QuotaBook.Problem(ranged), StringComparison.Ordinal);
        Assert.Null(QuotaBook.Problem(Quota("eng", guarantee: 2, limit: 2)));
    }

    [Fact]
    public void Guarantees_with_changes_merge_without_changing_the_book()
    {
        var book = new QuotaBook();
        book.Set(Quota("eng", guarantee: 2));
        book.Set(Quota("ops", guarantee: 1));

        var merged = book.GuaranteesWith([Quota("eng", guarantee: 5)]).Sum(r => r.Scalar);

        Assert.Equal(6, merged);
        Assert.Equal(2, book.Quota("eng")!.Guarantees.Single().Scalar);
    }
}
