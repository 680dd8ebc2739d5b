using Sched.V1;
using Scheduler.Master.State;
using Xunit;

namespace Scheduler.Master.Tests.State;

/// <summary>The framework book on its own: removal tombstones the id, both bounds (tombstones,
/// removed frameworks kept for their tasks) drop the oldest first, and a tombstoned id never
/// comes back.</summary>
public sealed class FrameworkBookTests
{
    private static FrameworkEntry Framework(string id, string principal = "") => new(new FrameworkInfo { Id = id, Name = id, Roles = { "r" }, Principal = principal });

    private static FrameworkBook Book(int maxRemoved = 10_000, int maxCompleted = 50) =>
        new(new MasterOptions { MaxRemovedFrameworks = maxRemoved, MaxCompletedFrameworks = maxCompleted });

    [Fact]
    public void Tombstones_stay_within_their_bound_and_the_oldest_are_handed_back_for_deletion()
    {
        var book = Book(maxRemoved: 2);
        var dropped = new List<string>();
        foreach (var id in new[] { "f1", "f2", "f3", "f4" })
        {
            var fw = Framework(id);
            book.Add(fw);
            dropped.AddRange(book.Remove(fw, []));
            Assert.True(book.TombstoneCount <= 2);
        }

        Assert.Equal(["f1", "f2"], dropped);
        Assert.False(book.IsRemoved("f1"));
        Assert.False(book.IsRemoved("f2"));
        Assert.True(book.IsRemoved("f3"));
        Assert.True(book.IsRemoved("f4"));
        Assert.Equal(0, book.Count);
    }

    [Fact]
    public void A_tombstoned_id_cannot_be_added_and_a_known_one_cannot_be_tombstoned()
    {
        var book = Book();
        Assert.Empty(book.AddTombstone("gone"));
        Assert.Throws<InvalidOperationException>(() => book.Add(Framework("gone")));
        Assert.Equal(0, book.Count);

        book.Add(Framework("live"));
        Assert.Throws<InvalidOperationException>(() => book.AddTombstone("live"));
        Assert.False(book.IsRemoved("live"));
        Assert.True(book.Contains("live"));
    }

    [Fact]
    public void Removing_an_entry_the_book_does_not_hold_changes_nothing()
    {
        var book = Book();
        var held = Framework("f1");
        book.Add(held);

        Assert.Throws<InvalidOperationException>(() => book.Remove(Framework("f1"), []));

        Assert.Same(held, book.Find("f1"));
        Assert.False(book.IsRemoved("f1"));
        Assert.Empty(book.Removed);
    }

    [Fact]
    public void Removed_frameworks_are_kept_with_their_tasks_up_to_the_bound_and_their_principals_stay_known()
    {
        var book = Book(maxCompleted: 2);
        foreach (var id in new[] { "f1", "f2", "f3" })
        {
            var fw = Framework(id, principal: "p-" + id);
            book.Add(fw);
            var task = TaskEntry.Launched(new TaskInfo { TaskId = "t-" + id, Name = "t" }, id, "a1", "r", [], TaskState.TaskFinished);
            book.Remove(fw, [task]);
        }
        book.Add(Framework("f4", principal: "p-f4"));

        Assert.Equal(["f2", "f3"], book.Removed.Select(r => r.Framework.Id));
        Assert.Equal(["t-f2", "t-f3"], book.Removed.SelectMany(r => r.Completed).Select(t => t.TaskId));
        Assert.True(book.IsRemoved("f1")); // the tombstone outlives the history
        var principals = book.Principals();
        Assert.Equal(3, principals.Count);
        Assert.Equal("p-f4", principals["f4"]);
        Assert.Equal("p-f2", principals["f2"]);
        Assert.False(principals.ContainsKey("f1"));
    }

    [Fact]
    public void Only_disconnected_frameworks_past_their_deadline_are_due_for_removal()
    {
        var book = Book();
        var now = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var due = Framework("due");
        due.FailoverDeadline = now;
        var later = Framework("later");
        later.FailoverDeadline = now.AddSeconds(1);
        var connected = Framework("connected");
        connected.FailoverDeadline = now.AddSeconds(-1);
        connected.Subscription = new FrameworkSubscription("s");
        foreach (var fw in new[] { due, later, connected, Framework("no-deadline") })
        {
            book.Add(fw);
        }

        Assert.Equal(["due"], book.PastFailoverDeadline(now).Select(f => f.Id));
    }
}
