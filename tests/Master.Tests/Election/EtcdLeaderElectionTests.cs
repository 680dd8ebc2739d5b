using Sched.V1;
using Scheduler.Etcd;
using Scheduler.Master.Election;
using Scheduler.Master.Tests.Registry;
using Xunit;
using Xunit.Abstractions;

namespace Scheduler.Master.Tests.Election;

public sealed class EtcdLeaderElectionTests(EtcdClusterFixture fixture, ITestOutputHelper output) : IClassFixture<EtcdClusterFixture>, IAsyncLifetime
{
    private readonly (string Prefix, string LeaderKey, string MastersPrefix) _ns = EtcdClusterFixture.NewNamespace();
    private readonly List<IAsyncDisposable> _owned = [];

    private static CancellationToken Timeout(int seconds = 30) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            await _owned[i].DisposeAsync();
        }
    }

    private EtcdLeaderElection Election(string id, string? address = null, params string[] endpoints)
    {
        var client = fixture.Client(endpoints);
        var election = new EtcdLeaderElection(client, new MasterInfo { Id = id, Address = address ?? $"127.0.0.1:{7000 + id.GetHashCode() % 1000 + 1000}" },
            new EtcdLeaderElectionOptions { LeaderKey = _ns.LeaderKey, MastersPrefix = _ns.MastersPrefix });
        _owned.Add(new AsyncDisposable(client.Dispose));
        _owned.Add(election);
        return election;
    }

    [Fact]
    public async Task Of_three_candidates_exactly_one_leads_and_all_see_it()
    {
        var elections = new[] { Election("m1", "h:1"), Election("m2", "h:2"), Election("m3", "h:3") };
        using var cts = new CancellationTokenSource();
        var campaigns = elections.Select(e => e.CampaignAsync(cts.Token)).ToArray();
        var first = await Task.WhenAny(campaigns).WaitAsync(TimeSpan.FromSeconds(20));
        var leadership = await first;
        // Nobody else wins while the leader holds its lease.
        await Assert.ThrowsAnyAsync<TimeoutException>(() => Task.WhenAll(campaigns.Where(c => c != first)).WaitAsync(TimeSpan.FromSeconds(2)));
        Assert.Equal(1, campaigns.Count(c => c.IsCompletedSuccessfully));
        foreach (var e in elections)
        {
            await Poll.UntilAsync(() => e.CurrentLeader?.Id == leadership.Leader.Id && e.CurrentLeader.Term == leadership.Term, TimeSpan.FromSeconds(10));
        }
        Assert.Equal("h:" + leadership.Leader.Id[1..], leadership.Leader.Address);
        Assert.True(leadership.Term > 0);
        await cts.CancelAsync();
        foreach (var c in campaigns.Where(c => c != first))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => c);
        }
    }

    [Fact]
    public async Task When_the_leaders_lease_is_revoked_it_loses_and_another_leads_in_a_higher_term()
    {
        var a = Election("a", "h:1");
        var b = Election("b", "h:2");
        var la = await a.CampaignAsync(Timeout());
        var campaignB = b.CampaignAsync(Timeout());
        using var admin = fixture.Client();
        var kv = await admin.GetAsync(_ns.LeaderKey, Timeout());
        Assert.Equal(la.Term, (ulong)kv!.CreateRevision);
        await admin.LeaseRevokeAsync(kv.Lease, Timeout());
        await WaitForCancellationAsync(TimeSpan.FromSeconds(10), la.Lost);
        var lb = await campaignB.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(lb.Term > la.Term);
        Assert.Null(a.Fence);
        await Poll.UntilAsync(() => a.CurrentLeader?.Id == "b", TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Resigning_hands_over_at_once()
    {
        var a = Election("a", "h:1");
        var b = Election("b", "h:2");
        var la = await a.CampaignAsync(Timeout());
        var campaignB = b.CampaignAsync(Timeout());
        var started = DateTime.UtcNow;
        await a.ResignAsync(Timeout());
        Assert.True(la.Lost.IsCancellationRequested);
        var lb = await campaignB.WaitAsync(TimeSpan.FromSeconds(10));
        var handover = DateTime.UtcNow - started;
        output.WriteLine($"handover after resign: {handover.TotalMilliseconds:0} ms");
        // Far below the 3 s TTL: the revoked lease deletes the key and the follower's watch fires.
        Assert.True(handover < TimeSpan.FromSeconds(2), $"handover took {handover}");
        Assert.Equal("b", lb.Leader.Id);
    }

    [Fact]
    public async Task A_second_master_with_the_same_advertise_address_refuses_to_campaign()
    {
        var a = Election("a", "10.0.0.1:5050");
        await a.CampaignAsync(Timeout());
        var twin = Election("twin", "10.0.0.1:5050");
        var e = await Assert.ThrowsAsync<MasterAddressConflictException>(() => twin.CampaignAsync(Timeout()));
        Assert.Contains("10.0.0.1:5050", e.Message);
        Assert.Contains("--advertise", e.Message);
    }

    [Fact]
    public async Task A_crashed_masters_address_claim_is_taken_over_after_its_lease_runs_out()
    {
        // The earlier incarnation stops renewing without revoking (as if it crashed).
        using var client = fixture.Client();
        var keeper = await LeaseKeeper.GrantAsync(client, TimeSpan.FromSeconds(2), cancellationToken: Timeout());
        await client.PutAsync(_ns.MastersPrefix + "10.0.0.2:5050", "old-id", keeper.LeaseId, Timeout());
        await keeper.DisposeAsync();
        var restarted = Election("new-id", "10.0.0.2:5050");
        var leadership = await restarted.CampaignAsync(Timeout());
        Assert.Equal("new-id", leadership.Leader.Id);
    }

    [Fact]
    public async Task When_keepalives_stop_the_leader_loses_before_another_is_elected()
    {
        var cluster = fixture.Cluster;
        var follower = await FollowerAsync(cluster);
        // The leader talks only to one member; pausing that member stops its keepalives.
        var a = Election("a", "h:1", cluster.Endpoint(follower));
        var la = await a.CampaignAsync(Timeout());
        var others = cluster.Endpoints.Where((_, i) => i != follower).ToArray();
        var b = Election("b", "h:2", others);
        await b.Observed.WaitAsync(TimeSpan.FromSeconds(10));
        var campaignB = b.CampaignAsync(Timeout());

        DateTime? lostAt = null;
        la.Lost.Register(() => lostAt = DateTime.UtcNow);
        var pausedAt = DateTime.UtcNow;
        cluster.Pause(follower);
        try
        {
            var lb = await campaignB.WaitAsync(TimeSpan.FromSeconds(15));
            var electedAt = DateTime.UtcNow;
            Assert.True(la.Lost.IsCancellationRequested, "the old leader must have given up before the new one was elected");
            Assert.True(lostAt < electedAt);
            output.WriteLine($"old leader lost after {(lostAt!.Value - pausedAt).TotalMilliseconds:0} ms; new leader (term {lb.Term}) after {(electedAt - pausedAt).TotalMilliseconds:0} ms");
            Assert.True(lb.Term > la.Term);
        }
        finally
        {
            cluster.Resume(follower);
        }
        await cluster.WaitHealthyAsync(follower, Timeout());
    }

    [Fact]
    public async Task Coordination_lets_the_store_write_only_while_its_election_leads()
    {
        using var coordination = new EtcdCoordination([.. fixture.Cluster.Endpoints], new EtcdCoordinationOptions { Root = "/test/" + Guid.NewGuid().ToString("N") });
        await using var store = coordination.CreateStore();
        var write = new Scheduler.Master.Registry.RegistryWrite("weights/web", Google.Protobuf.ByteString.CopyFromUtf8("2"));
        await Assert.ThrowsAsync<Scheduler.Master.Registry.RegistryFencedException>(() => store.CommitAsync([write], Timeout()));
        await using var election = coordination.CreateElection(new MasterInfo { Id = "c", Address = "h:c" });
        var leadership = await election.CampaignAsync(Timeout());
        await store.CommitAsync([write], Timeout());
        Assert.Equal("2", (await store.LoadAsync(Timeout()))["weights/web"].ToStringUtf8());
        await election.ResignAsync(Timeout());
        Assert.True(leadership.Lost.IsCancellationRequested);
        await Assert.ThrowsAsync<Scheduler.Master.Registry.RegistryFencedException>(() => store.CommitAsync([write], Timeout()));
    }

    [Fact]
    public async Task Etcd_unreachable_at_start_keeps_campaigning_without_crashing()
    {
        using var client = new EtcdClient(new EtcdClientOptions { Endpoints = ["127.0.0.1:1"], RequestTimeout = TimeSpan.FromMilliseconds(500) });
        await using var election = new EtcdLeaderElection(client, new MasterInfo { Id = "x", Address = "h:9" },
            new EtcdLeaderElectionOptions { LeaderKey = _ns.LeaderKey, MastersPrefix = _ns.MastersPrefix });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => election.CampaignAsync(cts.Token));
        Assert.Null(election.CurrentLeader);
        Assert.False(election.Observed.IsCompleted);
    }

    internal static async Task<int> FollowerAsync(LocalEtcdCluster cluster)
    {
        for (var i = 0; i < cluster.Count; i++)
        {
            using var one = new EtcdClient(new EtcdClientOptions { Endpoints = [cluster.Endpoint(i)] });
            var status = await one.StatusAsync(Timeout());
            if (status.Leader != status.Header.MemberId)
            {
                return i;
            }
        }
        throw new InvalidOperationException("no follower");
    }

    internal static Task WaitForCancellationAsync(TimeSpan timeout, CancellationToken token)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        token.Register(() => tcs.TrySetResult());
        return tcs.Task.WaitAsync(timeout, CancellationToken.None);
    }

    private sealed class AsyncDisposable(Action dispose) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            dispose();
            return ValueTask.CompletedTask;
        }
    }
}
