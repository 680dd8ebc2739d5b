using Scheduler.Master.Registry;
using Xunit;

namespace Scheduler.Master.Tests.Registry;

/// <summary>The one group-commit queue of the registry stores and the registry writer.</summary>
public sealed class GroupCommitQueueTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Items_queued_while_a_group_commits_form_the_next_group_in_arrival_order()
    {
        var groups = new List<int[]>();
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var queue = new GroupCommitQueue<int>(async group =>
        {
            lock (groups)
            {
                groups.Add([.. group]);
            }
            if (group[0] == 0)
            {
                started.TrySetResult();
                await held.Task;
            }
        });
        var first = queue.Enqueue(0);
        await started.Task.WaitAsync(Wait);
        var rest = Enumerable.Range(1, 20).Select(queue.Enqueue).ToList();
        Assert.All(rest, t => Assert.False(t.IsCompleted));
        held.SetResult();
        await Task.WhenAll(rest.Append(first)).WaitAsync(Wait);
        Assert.Equal(2, groups.Count);
        Assert.Equal([0], groups[0]);
        Assert.Equal(Enumerable.Range(1, 20), groups[1]);
        Assert.Equal(2, queue.GroupsCommitted);
    }

    [Fact]
    public async Task A_group_takes_from_the_head_only_what_fits()
    {
        var groups = new List<int[]>();
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var queue = new GroupCommitQueue<int>(async group =>
        {
            groups.Add([.. group]);
            await held.Task;
        }, fits: (group, next) => group.Sum() + next <= 10);
        var all = new List<Task> { queue.Enqueue(100) };
        all.AddRange(new[] { 4, 4, 4, 9, 1, 1 }.Select(queue.Enqueue));
        held.SetResult();
        await Task.WhenAll(all).WaitAsync(Wait);
        Assert.Equal(new[] { new[] { 100 }, [4, 4], [4], [9, 1], [1] }, groups);
    }

    [Fact]
    public async Task A_failed_group_fails_each_item_unless_it_may_be_split_then_only_the_bad_item_fails()
    {
        foreach (var mayBeSplit in new[] { false, true })
        {
            var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var groups = 0;
            Task Commit(IReadOnlyList<int> group)
            {
                groups++;
                if (group.Contains(-1))
                {
                    throw new InvalidOperationException("item -1 is bad");
                }
                if (group[0] == 0)
                {
                    started.TrySetResult();
                    return held.Task;
                }
                return Task.CompletedTask;
            }
            var queue = mayBeSplit
                ? new GroupCommitQueue<int>(Commit, splitOnFailure: e => e is InvalidOperationException)
                : new GroupCommitQueue<int>(Commit);
            var blocker = queue.Enqueue(0);
            await started.Task.WaitAsync(Wait);
            var items = new[] { 1, -1, 2 }.Select(queue.Enqueue).ToArray();
            held.SetResult();
            await blocker.WaitAsync(Wait);
            await Assert.ThrowsAsync<InvalidOperationException>(() => items[1].WaitAsync(Wait));
            if (!mayBeSplit)
            {
                Assert.Equal(2, groups); // [0], then [1, -1, 2] failing whole
                await Assert.ThrowsAsync<InvalidOperationException>(() => items[0].WaitAsync(Wait));
                await Assert.ThrowsAsync<InvalidOperationException>(() => items[2].WaitAsync(Wait));
            }
            else
            {
                await items[0].WaitAsync(Wait);
                await items[2].WaitAsync(Wait);
                Assert.Equal(5, groups); // [0], [1, -1, 2] failing, then [1], [-1], [2]
            }
        }
    }

    [Fact]
    public async Task Stopping_refuses_new_items_and_drains_or_fails_the_queued_ones()
    {
        foreach (var drain in new[] { true, false })
        {
            var committed = new List<int>();
            var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var queue = new GroupCommitQueue<int>(async group =>
            {
                if (group[0] == 0)
                {
                    started.TrySetResult();
                    await held.Task;
                }
                committed.AddRange(group);
            });
            var inFlight = queue.Enqueue(0);
            await started.Task.WaitAsync(Wait);
            var queued = queue.Enqueue(1);
            var stopped = queue.StopAsync(new ObjectDisposedException("queue"), drain);
            var refused = queue.Enqueue(2);
            await Assert.ThrowsAsync<ObjectDisposedException>(() => refused.WaitAsync(Wait));
            Assert.False(stopped.IsCompleted);
            held.SetResult();
            await stopped.WaitAsync(Wait);
            await inFlight.WaitAsync(Wait);
            if (drain)
            {
                await queued.WaitAsync(Wait);
                Assert.Equal([0, 1], committed);
            }
            else
            {
                await Assert.ThrowsAsync<ObjectDisposedException>(() => queued.WaitAsync(Wait));
                Assert.Equal([0], committed);
            }
        }
    }
}
