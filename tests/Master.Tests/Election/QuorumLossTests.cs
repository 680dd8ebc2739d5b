using Google.Protobuf;
using Sched.V1;
using Scheduler.Etcd;
using Scheduler.Master.Election;
using Scheduler.Master.Registry;
using Xunit;
using Xunit.Abstractions;

namespace Scheduler.Master.Tests.Election;

/// <summary>etcd loses its quorum under a leading master (own cluster: members are killed).</summary>
public sealed class QuorumLossTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Losing_quorum_ends_leadership_and_leaves_no_half_written_commit()
    {
        await using var cluster = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 3 });
        using var client = new EtcdClient(new EtcdClientOptions { Endpoints = [.. cluster.Endpoints], RequestTimeout = TimeSpan.FromSeconds(2) });
        await using var election = new EtcdLeaderElection(client, new MasterInfo { Id = "m1", Address = "h:1" });
        var leadership = await election.CampaignAsync(CancellationToken.None);
        await using var store = new EtcdRegistryStore(client, () => election.Fence);
        await store.CommitAsync([new RegistryWrite("agents/before", ByteString.CopyFromUtf8("1"))], CancellationToken.None);

        await Task.WhenAll(cluster.KillAsync(0), cluster.KillAsync(1));
        var killedAt = DateTime.UtcNow;
        // A commit racing the loss: it must fail as a whole (fenced or unavailable), never half-apply.
        var racing = store.CommitAsync(
            [.. Enumerable.Range(0, 20).Select(i => new RegistryWrite($"agents/during-{i}", ByteString.CopyFromUtf8("x")))],
            CancellationToken.None);
        var lost = new TaskCompletionSource();
        leadership.Lost.Register(() => lost.TrySetResult());
        await lost.Task.WaitAsync(TimeSpan.FromSeconds(10));
        output.WriteLine($"leadership lost {(DateTime.UtcNow - killedAt).TotalMilliseconds:0} ms after quorum loss");
        var error = await Record.ExceptionAsync(() => racing);
        Assert.True(error is RegistryFencedException or RegistryUnavailableException, $"unexpected {error}");
        Assert.Null(election.Fence);
        await Assert.ThrowsAsync<RegistryFencedException>(() => store.CommitAsync([new RegistryWrite("agents/after", ByteString.CopyFromUtf8("x"))], CancellationToken.None));

        await Task.WhenAll(cluster.RestartAsync(0), cluster.RestartAsync(1));
        using var reader = new EtcdClient(new EtcdClientOptions { Endpoints = [.. cluster.Endpoints], RequestTimeout = TimeSpan.FromSeconds(10) });
        await using var readStore = new EtcdRegistryStore(reader, () => null);
        var records = await readStore.LoadAsync(CancellationToken.None);
        // The racing commit either landed whole (its proposal reached the raft log before the quorum
        // went and was committed after it came back) or not at all.
        var during = records.Keys.Count(k => k.StartsWith("agents/during-", StringComparison.Ordinal));
        Assert.True(during is 0 or 20, $"{during} of 20 records of one commit were written");
        Assert.Contains("agents/before", records.Keys);
        Assert.DoesNotContain("agents/after", records.Keys);
    }
}
