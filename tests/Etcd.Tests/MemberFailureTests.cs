using Scheduler.Etcd.V3;
using Xunit;
using Xunit.Abstractions;

namespace Scheduler.Etcd.Tests;

/// <summary>Members killed, restarted and paused under running watches and lease keepalives.</summary>
public sealed class MemberFailureTests(EtcdClusterFixture fixture, ITestOutputHelper output) : IClassFixture<EtcdClusterFixture>
{
    [Fact]
    public async Task Watch_and_lease_survive_their_member_being_killed_and_restarted()
    {
        var cluster = fixture.Cluster;
        using var client = fixture.Client();
        using var writerClient = fixture.Client();
        var prefix = TestKeys.Prefix();
        var start = EtcdClient.Key(prefix);
        await using var keeper = await LeaseKeeper.GrantAsync(client, TimeSpan.FromSeconds(3), cancellationToken: TestKeys.Timeout());
        await using var watch = client.Watch(start, EtcdClient.PrefixEnd(start));
        await watch.Created.WaitAsync(TimeSpan.FromSeconds(10));

        var written = 0;
        using var stopWriting = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            while (!stopWriting.IsCancellationRequested)
            {
                await writerClient.PutAsync($"{prefix}{written:D5}", written.ToString(), cancellationToken: TestKeys.Timeout());
                written++;
            }
        });

        for (var round = 0; round < 2; round++)
        {
            var victim = IndexOf(cluster, client.CurrentEndpoint);
            var before = Volatile.Read(ref written);
            output.WriteLine($"round {round}: killing member {victim} ({client.CurrentEndpoint}) after {before} writes");
            await cluster.KillAsync(victim);
            await LeaseAndWatchTests.WaitUntilAsync(() => Volatile.Read(ref written) >= before + 20, TimeSpan.FromSeconds(20));
            await cluster.RestartAsync(victim, TestKeys.Timeout());
            await LeaseAndWatchTests.WaitUntilAsync(() => Volatile.Read(ref written) >= before + 40, TimeSpan.FromSeconds(20));
        }
        await stopWriting.CancelAsync();
        await writer;

        var seen = new List<string>();
        long lastRevision = 0;
        while (seen.Count < written)
        {
            var batch = await watch.Batches.ReadAsync(TestKeys.Timeout());
            Assert.True(batch.Revision > lastRevision, "revisions must increase");
            lastRevision = batch.Revision;
            seen.AddRange(batch.Events.Where(e => e.Type == Event.Types.EventType.Put).Select(e => e.Kv.Value.ToStringUtf8()));
        }
        Assert.Equal(Enumerable.Range(0, written).Select(i => i.ToString()), seen);
        Assert.True(watch.Reconnects >= 1, "the watch should have reconnected");
        Assert.False(keeper.Lost.IsCancellationRequested, keeper.LostReason);
        Assert.True((await client.LeaseTimeToLiveAsync(keeper.LeaseId, TestKeys.Timeout())).TTL > 0);
        output.WriteLine($"{written} events, {watch.Reconnects} watch reconnects, {keeper.Renewals} renewals");
    }

    [Fact]
    public async Task A_lease_is_kept_when_its_member_is_paused()
    {
        var cluster = fixture.Cluster;
        using var client = fixture.Client();
        await using var keeper = await LeaseKeeper.GrantAsync(client, TimeSpan.FromSeconds(3), cancellationToken: TestKeys.Timeout());
        await LeaseAndWatchTests.WaitUntilAsync(() => keeper.Renewals >= 1, TimeSpan.FromSeconds(10));
        var victim = IndexOf(cluster, client.CurrentEndpoint);
        cluster.Pause(victim);
        try
        {
            var renewals = keeper.Renewals;
            // The keeper notices the stuck stream and renews through another member, within the TTL.
            await LeaseAndWatchTests.WaitUntilAsync(() => keeper.Renewals >= renewals + 6, TimeSpan.FromSeconds(15));
            Assert.False(keeper.Lost.IsCancellationRequested, keeper.LostReason);
            Assert.NotEqual(cluster.Endpoint(victim), client.CurrentEndpoint);
        }
        finally
        {
            cluster.Resume(victim);
        }
        await cluster.WaitHealthyAsync(victim, TestKeys.Timeout());
    }

    [Fact]
    public async Task Losing_quorum_makes_the_keeper_report_the_lease_lost_before_it_could_expire()
    {
        await using var cluster = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 3 });
        using var client = new EtcdClient(new EtcdClientOptions { Endpoints = [.. cluster.Endpoints] });
        await using var keeper = await LeaseKeeper.GrantAsync(client, TimeSpan.FromSeconds(3), cancellationToken: TestKeys.Timeout());
        await LeaseAndWatchTests.WaitUntilAsync(() => keeper.Renewals >= 1, TimeSpan.FromSeconds(10));
        var killedAt = DateTime.UtcNow;
        await Task.WhenAll(cluster.KillAsync(0), cluster.KillAsync(1));
        await LeaseAndWatchTests.WaitForCancellationAsync(TimeSpan.FromSeconds(10), keeper.Lost);
        var after = DateTime.UtcNow - killedAt;
        output.WriteLine($"lost after {after.TotalMilliseconds:0} ms: {keeper.LostReason}");
        // Lost strictly before the TTL has run out since the last confirmed renewal.
        Assert.True(after < TimeSpan.FromSeconds(3), $"lost only after {after}");
        Assert.Contains("in time", keeper.LostReason);
    }

    private static int IndexOf(LocalEtcdCluster cluster, string endpoint)
    {
        for (var i = 0; i < cluster.Count; i++)
        {
            if (cluster.Endpoint(i) == endpoint)
            {
                return i;
            }
        }
        throw new InvalidOperationException($"{endpoint} is not a member");
    }
}
