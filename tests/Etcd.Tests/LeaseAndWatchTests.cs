using Etcdserverpb;
using Google.Protobuf;
using Mvccpb;
using Xunit;

namespace Scheduler.Etcd.Tests;

public sealed class LeaseAndWatchTests(EtcdClusterFixture fixture) : IClassFixture<EtcdClusterFixture>
{
    [Fact]
    public async Task A_kept_lease_outlives_its_ttl()
    {
        using var client = fixture.Client();
        await using var keeper = await LeaseKeeper.GrantAsync(client, TimeSpan.FromSeconds(2), cancellationToken: TestKeys.Timeout());
        var key = TestKeys.Prefix() + "owned";
        await client.PutAsync(key, "x", keeper.LeaseId, TestKeys.Timeout());
        // Renewals every TTL/3: 8 of them span well over the 2 s TTL.
        await Poll.UntilAsync(() => keeper.Renewals >= 8, TimeSpan.FromSeconds(15));
        Assert.False(keeper.Lost.IsCancellationRequested);
        var ttl = await client.LeaseTimeToLiveAsync(keeper.LeaseId, TestKeys.Timeout());
        Assert.True(ttl.TTL > 0);
        Assert.NotNull(await client.GetAsync(key, TestKeys.Timeout()));
    }

    [Fact]
    public async Task An_unkept_lease_expires_and_deletes_its_keys()
    {
        using var client = fixture.Client();
        var grant = await client.LeaseGrantAsync(TimeSpan.FromSeconds(2), TestKeys.Timeout());
        var key = TestKeys.Prefix() + "ephemeral";
        var put = await client.PutAsync(key, "x", grant.ID, TestKeys.Timeout());
        await using var watch = client.Watch(EtcdClient.Key(key), startRevision: put.Header.Revision + 1);
        var batch = await watch.ReadAsync(TestKeys.Timeout(20));
        Assert.Equal(Event.Types.EventType.Delete, Assert.Single(batch.Events).Type);
        Assert.Equal(-1, (await client.LeaseTimeToLiveAsync(grant.ID, TestKeys.Timeout())).TTL);
    }

    [Fact]
    public async Task Revoking_a_kept_lease_signals_loss_and_deletes_its_keys()
    {
        using var client = fixture.Client();
        var keeper = await LeaseKeeper.GrantAsync(client, TimeSpan.FromSeconds(5), cancellationToken: TestKeys.Timeout());
        var key = TestKeys.Prefix() + "k";
        await client.PutAsync(key, "x", keeper.LeaseId, TestKeys.Timeout());
        await keeper.RevokeAsync(TestKeys.Timeout());
        Assert.True(keeper.Lost.IsCancellationRequested);
        Assert.Null(await client.GetAsync(key, TestKeys.Timeout()));
        await keeper.DisposeAsync();
    }

    [Fact]
    public async Task A_lease_revoked_elsewhere_is_reported_lost_by_its_keeper()
    {
        using var client = fixture.Client();
        await using var keeper = await LeaseKeeper.GrantAsync(client, TimeSpan.FromSeconds(3), cancellationToken: TestKeys.Timeout());
        await Poll.UntilAsync(() => keeper.Renewals >= 1, TimeSpan.FromSeconds(10));
        using var other = fixture.Client();
        await other.LeaseRevokeAsync(keeper.LeaseId, TestKeys.Timeout());
        await WaitForCancellationAsync(TimeSpan.FromSeconds(5), keeper.Lost);
        Assert.Contains("expired or was revoked", keeper.LostReason);
    }

    [Fact]
    public async Task A_watch_from_a_past_revision_replays_history_in_order()
    {
        using var client = fixture.Client();
        var prefix = TestKeys.Prefix();
        var first = await client.PutAsync(prefix + "a", "1", cancellationToken: TestKeys.Timeout());
        await client.PutAsync(prefix + "b", "2", cancellationToken: TestKeys.Timeout());
        await client.DeleteRangeAsync(new DeleteRangeRequest { Key = EtcdClient.Key(prefix + "a") }, TestKeys.Timeout());
        var start = EtcdClient.Key(prefix);
        await using var watch = client.Watch(start, EtcdClient.PrefixEnd(start), first.Header.Revision);
        var events = new List<Event>();
        while (events.Count < 3)
        {
            events.AddRange((await watch.ReadAsync(TestKeys.Timeout())).Events);
        }
        Assert.Equal(["PUT a", "PUT b", "DELETE a"], events.Select(e => $"{e.Type.ToString().ToUpperInvariant()} {EtcdClient.KeyText(e.Kv.Key)[prefix.Length..]}"));
        Assert.True(events.Zip(events.Skip(1)).All(p => p.First.Kv.ModRevision < p.Second.Kv.ModRevision));
    }

    [Fact]
    public async Task A_watch_of_a_compacted_revision_fails_loudly()
    {
        using var client = fixture.Client();
        var key = TestKeys.Prefix() + "c";
        var first = await client.PutAsync(key, "1", cancellationToken: TestKeys.Timeout());
        var last = await client.PutAsync(key, "2", cancellationToken: TestKeys.Timeout());
        await client.CompactAsync(last.Header.Revision, TestKeys.Timeout());
        await using var watch = client.Watch(EtcdClient.Key(key), startRevision: first.Header.Revision);
        var e = await Assert.ThrowsAsync<EtcdCompactedException>(async () => await watch.ReadAsync(TestKeys.Timeout()));
        Assert.Equal(first.Header.Revision, e.RequestedRevision);
        Assert.True(e.CompactRevision >= last.Header.Revision);
    }

    internal static Task WaitForCancellationAsync(TimeSpan timeout, CancellationToken token)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        token.Register(() => tcs.TrySetResult());
        return tcs.Task.WaitAsync(timeout, CancellationToken.None);
    }
}
