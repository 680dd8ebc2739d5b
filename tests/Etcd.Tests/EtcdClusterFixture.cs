using Scheduler.Etcd;
using Xunit;

namespace Scheduler.Etcd.Tests;

/// <summary>A real 3-member etcd cluster on loopback, shared by the tests of one class.</summary>
public sealed class EtcdClusterFixture : IAsyncLifetime
{
    public LocalEtcdCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 3 });

    public async Task DisposeAsync() => await Cluster.DisposeAsync();

    public EtcdClient Client(TimeSpan? requestTimeout = null, IList<string>? endpoints = null) => new(new EtcdClientOptions
    {
        Endpoints = endpoints ?? [.. Cluster.Endpoints],
        RequestTimeout = requestTimeout ?? TimeSpan.FromSeconds(10),
    });
}

internal static class TestKeys
{
    /// <summary>A key prefix no other test uses.</summary>
    public static string Prefix() => "/test/" + Guid.NewGuid().ToString("N") + "/";

    public static CancellationToken Timeout(int seconds = 30) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;
}
