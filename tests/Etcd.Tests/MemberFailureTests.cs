using Etcdserverpb;
using Mvccpb;
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
        // A TTL that outlasts an etcd leader election (election timeout 1 s, randomised up to 2 s)
        // plus a reconnect, with room for a loaded machine (5 s was once not enough in a clean-clone
        // run). Renewal within a short TTL through a stuck member is the pause tests' subject.
        await using var keeper = await LeaseKeeper.GrantAsync(client, TimeSpan.FromSeconds(10), cancellationToken: TestKeys.Timeout());
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
            await Poll.UntilAsync(() => Volatile.Read(ref written) >= before + 20, TimeSpan.FromSeconds(20));
            await cluster.RestartAsync(victim, TestKeys.Timeout());
            await Poll.UntilAsync(() => Volatile.Read(ref written) >= before + 40, TimeSpan.FromSeconds(20));
        }
        await stopWriting.CancelAsync();
        await writer;

        // Only this test writes to the cluster now: the watch must deliver every revision from the
        // first write to the last exactly once, in order. (A put retried after a lost answer may
        // appear twice in etcd itself; that is the writer's at-least-once, not the watch's.)
        var events = new List<Event>();
        while (events.Select(e => e.Kv.Value.ToStringUtf8()).Distinct().Count() < written)
        {
            events.AddRange((await watch.ReadAsync(TestKeys.Timeout())).Events);
        }
        var revisions = events.Select(e => e.Kv.ModRevision).ToList();
        Assert.Equal(Enumerable.Range(0, revisions.Count).Select(i => revisions[0] + i), revisions);
        var values = events.Select(e => e.Kv.Value.ToStringUtf8()).Where((v, i) => i == 0 || v != events[i - 1].Kv.Value.ToStringUtf8());
        Assert.Equal(Enumerable.Range(0, written).Select(i => i.ToString()), values);
        Assert.True(watch.Reconnects >= 1, "the watch should have reconnected");
        Assert.False(keeper.Lost.IsCancellationRequested, keeper.LostReason);
        Assert.True((await client.LeaseTimeToLiveAsync(keeper.LeaseId, TestKeys.Timeout())).TTL > 0);
        output.WriteLine($"{written} events, {watch.Reconnects} watch reconnects, {keeper.Renewals} renewals");
    }

    [Fact]
    public async Task A_lease_is_kept_when_its_member_is_paused()
    {
        var cluster = fixture.Cluster;
        // Pause a follower (pausing the raft leader would also test etcd's own election time): the
        // keeper must notice its stream is stuck and renew through another member within the TTL.
        var victim = await FollowerAsync(cluster);
        using var client = new EtcdClient(new EtcdClientOptions
        {
            Endpoints = [cluster.Endpoint(victim), .. cluster.Endpoints.Where((_, i) => i != victim)],
            ShuffleEndpoints = false,
        });
        await using var keeper = await LeaseKeeper.GrantAsync(client, TimeSpan.FromSeconds(3), cancellationToken: TestKeys.Timeout());
        await Poll.UntilAsync(() => keeper.Renewals >= 1, TimeSpan.FromSeconds(10));
        Assert.Equal(cluster.Endpoint(victim), client.CurrentEndpoint);
        cluster.Pause(victim);
        try
        {
            var renewals = keeper.Renewals;
            // The keeper notices the stuck stream and renews through another member, within the TTL.
            await Poll.HoldsWithinAsync(() => keeper.Renewals >= renewals + 6 || keeper.Lost.IsCancellationRequested, TimeSpan.FromSeconds(15));
            output.WriteLine($"renewals {renewals} -> {keeper.Renewals}, endpoint {client.CurrentEndpoint} (paused {cluster.Endpoint(victim)}), lost: {keeper.LostReason}");
            Assert.True(keeper.Renewals >= renewals + 6, $"only {keeper.Renewals - renewals} renewals while the member was paused");
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
        // A 2 s margin on a 6 s lease: the keeper gives up 4 s after its last confirmed renewal,
        // and a loaded machine may run that check late by up to the margin.
        await using var keeper = await LeaseKeeper.GrantAsync(client, TimeSpan.FromSeconds(6), TimeSpan.FromSeconds(2), TestKeys.Timeout());
        await Poll.UntilAsync(() => keeper.Renewals >= 1, TimeSpan.FromSeconds(10));
        await Task.WhenAll(cluster.KillAsync(0), cluster.KillAsync(1));
        await LeaseAndWatchTests.WaitForCancellationAsync(TimeSpan.FromSeconds(10), keeper.Lost);
        var lostAt = DateTimeOffset.UtcNow;
        // A leader cut off from its quorum still renews leases until it steps down; what counts is
        // that the loss is reported before the TTL has run out since the last confirmed renewal.
        var sinceRenewal = lostAt - keeper.LastRenewal!.Value;
        output.WriteLine($"lost {sinceRenewal.TotalMilliseconds:0} ms after the last renewal: {keeper.LostReason}");
        Assert.True(sinceRenewal < keeper.Ttl, $"lost only {sinceRenewal} after the last renewal, when the lease may already have expired");
        Assert.Contains("in time", keeper.LostReason);
    }

    internal static async Task<int> FollowerAsync(LocalEtcdCluster cluster)
    {
        for (var i = 0; i < cluster.Count; i++)
        {
            using var one = new EtcdClient(new EtcdClientOptions { Endpoints = [cluster.Endpoint(i)] });
            var status = await one.StatusAsync(TestKeys.Timeout());
            if (status.Leader != status.Header.MemberId)
            {
                return i;
            }
        }
        throw new InvalidOperationException("no follower");
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
