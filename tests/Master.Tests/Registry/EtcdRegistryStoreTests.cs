using Google.Protobuf;
using Sched.V1;
using Scheduler.Etcd;
using Scheduler.Master.Election;
using Scheduler.Master.Registry;
using Xunit;

namespace Scheduler.Master.Tests.Registry;

/// <summary>The registry contract on etcd, written by an elected leader, plus fencing.</summary>
public sealed class EtcdRegistryStoreTests(EtcdClusterFixture fixture) : RegistryStoreContractTests, IClassFixture<EtcdClusterFixture>
{
    private readonly (string Prefix, string LeaderKey, string MastersPrefix) _ns = EtcdClusterFixture.NewNamespace();
    private EtcdClient _client = null!;
    private EtcdLeaderElection _election = null!;

    public override async Task InitializeAsync()
    {
        _client = fixture.Client();
        _election = NewElection(_client, "m1", "127.0.0.1:7001");
        await _election.CampaignAsync(Timeout);
    }

    private EtcdLeaderElection NewElection(EtcdClient client, string id, string address) =>
        new(client, new MasterInfo { Id = id, Address = address }, new EtcdLeaderElectionOptions { LeaderKey = _ns.LeaderKey, MastersPrefix = _ns.MastersPrefix });

    private EtcdRegistryStore NewStore(EtcdClient client, Func<RegistryFence?> fence) =>
        new(client, fence, new EtcdRegistryStoreOptions { Prefix = _ns.Prefix });

    protected override Task<IRegistryStore> OpenStoreAsync() => Task.FromResult<IRegistryStore>(NewStore(_client, () => _election.Fence));

    protected override async Task DeleteStorageAsync()
    {
        await _election.DisposeAsync();
        var root = EtcdClient.Key(_ns.Prefix);
        await _client.DeleteRangeAsync(new Etcdserverpb.DeleteRangeRequest { Key = root, RangeEnd = EtcdClient.PrefixEnd(root) });
        _client.Dispose();
    }

    [Fact]
    public async Task A_deposed_leaders_write_is_fenced_and_the_new_leaders_lands()
    {
        var oldStore = await OpenAsync();
        var oldFence = _election.Fence!;
        await oldStore.CommitAsync([new RegistryWrite("agents/a", Bytes("from-old"))], Timeout);

        using var otherClient = fixture.Client();
        await using var other = NewElection(otherClient, "m2", "127.0.0.1:7002");
        var campaign = other.CampaignAsync(Timeout);
        // Depose the first leader from outside: revoke its lease (as etcd does when it expires).
        var leaderKv = await otherClient.GetAsync(_ns.LeaderKey, Timeout);
        await otherClient.LeaseRevokeAsync(leaderKv!.Lease, Timeout);
        var leadership = await campaign;
        Assert.True(leadership.Term > (ulong)oldFence.Term);

        // Even if the old master has not noticed yet, its transaction compares the term and fails.
        var staleStore = NewStore(_client, () => oldFence with { Lost = CancellationToken.None });
        var e = await Assert.ThrowsAsync<RegistryFencedException>(() => staleStore.CommitAsync([new RegistryWrite("agents/a", Bytes("stale"))], Timeout));
        Assert.Contains($"term {oldFence.Term}", e.Message);
        Assert.Contains($"term {leadership.Term}", e.Message);
        // And once it noticed, it refuses locally.
        await Assert.ThrowsAsync<RegistryFencedException>(() => oldStore.CommitAsync([new RegistryWrite("agents/a", Bytes("stale"))], Timeout));

        await using var newStore = NewStore(otherClient, () => other.Fence);
        await newStore.CommitAsync([new RegistryWrite("agents/b", Bytes("from-new"))], Timeout);
        var loaded = await newStore.LoadAsync(Timeout);
        Assert.Equal("from-old", loaded["agents/a"].ToStringUtf8());
        Assert.Equal("from-new", loaded["agents/b"].ToStringUtf8());
        await staleStore.DisposeAsync();
    }

    [Fact]
    public async Task A_master_that_does_not_lead_cannot_write()
    {
        await using var store = NewStore(_client, () => null);
        await Assert.ThrowsAsync<RegistryFencedException>(() => store.CommitAsync([new RegistryWrite("agents/a", Bytes("x"))], Timeout));
    }

    [Fact]
    public async Task A_commit_larger_than_one_transaction_is_refused_with_a_clear_error()
    {
        var store = await OpenAsync();
        var writes = Enumerable.Range(0, 129).Select(i => new RegistryWrite($"agents/a{i}", Bytes("x"))).ToList();
        var e = await Assert.ThrowsAsync<ArgumentException>(() => store.CommitAsync(writes, Timeout));
        Assert.Contains("--max-txn-ops", e.Message);
        Assert.Empty(await store.LoadAsync(Timeout));
    }

    [Fact]
    public async Task Unreachable_etcd_gives_a_clear_unavailable_error()
    {
        using var dead = new EtcdClient(new EtcdClientOptions { Endpoints = ["127.0.0.1:1"], RequestTimeout = TimeSpan.FromSeconds(1) });
        var fence = _election.Fence!;
        await using var store = NewStore(dead, () => fence);
        var load = await Assert.ThrowsAsync<RegistryUnavailableException>(() => store.LoadAsync(Timeout));
        Assert.Contains("127.0.0.1:1", load.Message);
        var commit = await Assert.ThrowsAsync<RegistryUnavailableException>(() => store.CommitAsync([new RegistryWrite("agents/a", Bytes("x"))], Timeout));
        Assert.Contains("not confirmed", commit.Message);
    }

    [Fact]
    public async Task Queued_commits_are_merged_into_fewer_transactions()
    {
        var store = (EtcdRegistryStore)await OpenAsync();
        var commits = Enumerable.Range(0, 50).Select(i => store.CommitAsync([new RegistryWrite($"frameworks/f{i}", Bytes("v"))], Timeout)).ToArray();
        await Task.WhenAll(commits);
        Assert.Equal(50, (await store.LoadAsync(Timeout)).Count);
        Assert.True(store.TransactionsWritten < 50, $"{store.TransactionsWritten} transactions for 50 queued commits");
    }
}
