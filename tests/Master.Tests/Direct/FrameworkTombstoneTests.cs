using Grpc.Core;
using Sched.V1;
using Scheduler.Master.Registry;
using Xunit;

namespace Scheduler.Master.Tests.Direct;

/// <summary>Removed frameworks leave registry tombstones so that every later leader refuses their
/// ids; the tombstones are bounded (<see cref="MasterOptions.MaxRemovedFrameworks"/>), oldest
/// deleted first, in this term and after a failover.</summary>
public sealed class FrameworkTombstoneTests
{
    [Fact]
    public async Task Tombstones_of_removed_frameworks_are_bounded_oldest_first_across_failovers()
    {
        await using var master = await DirectMaster.StartAsync(o => o.MaxRemovedFrameworks = 3);
        var removed = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var fw = DirectFramework.For(master, name: $"fw{i}");
            await fw.SubscribeAsync();
            await master.On(l => l.Teardown(new TeardownRequest { FrameworkId = fw.Id, StreamId = fw.StreamId }));
            removed.Add(fw.Id);
            await master.AdvanceAsync(TimeSpan.FromSeconds(1)); // removal times order the tombstones
        }
        await master.FailoverAsync();
        Assert.Equal(removed.Skip(2).Order(StringComparer.Ordinal), Tombstones(master));

        // The kept ones are still refused by the new leader; the forgotten ones are not.
        var refused = await Assert.ThrowsAsync<RpcException>(() => Resubscribe(master, removed[4]));
        Assert.Equal(StatusCode.NotFound, refused.StatusCode);
        Assert.Contains("was removed", refused.Status.Detail, StringComparison.Ordinal);
        await Resubscribe(master, removed[0]);

        // Removing one more in the new term drops the oldest kept one.
        var last = DirectFramework.For(master, name: "last");
        await last.SubscribeAsync();
        await master.AdvanceAsync(TimeSpan.FromSeconds(1));
        await master.On(l => l.Teardown(new TeardownRequest { FrameworkId = last.Id, StreamId = last.StreamId }));
        await master.FailoverAsync();
        Assert.Equal(new[] { removed[3], removed[4], last.Id }.Order(StringComparer.Ordinal), Tombstones(master));
    }

    private static Task Resubscribe(DirectMaster master, string id) =>
        new DirectFramework(master, new FrameworkInfo { Id = id, Name = "again", Roles = { "web" }, FailoverTimeoutSeconds = 60 }).SubscribeAsync();

    private static IEnumerable<string> Tombstones(DirectMaster master) => master.Registry.Snapshot
        .Where(p => p.Key.StartsWith(RegistryRecords.FrameworkPrefix, StringComparison.Ordinal))
        .Select(p => FrameworkRecord.Parser.ParseFrom(p.Value))
        .Where(r => r.RemovedTime > 0)
        .Select(r => r.Info.Id)
        .Order(StringComparer.Ordinal);
}
