using Scheduler.Etcd;
using Xunit;

namespace Scheduler.Master.Tests.Registry;

/// <summary>A real 3-member etcd cluster on loopback, shared by the tests of one class.</summary>
public sealed class EtcdClusterFixture : IAsyncLifetime
{
    public LocalEtcdCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 3 });

    public async Task DisposeAsync() => await Cluster.DisposeAsync();

    public EtcdClient Client(params string[] endpoints) => new(new EtcdClientOptions
    {
        Endpoints = endpoints.Length > 0 ? endpoints : [.. Cluster.Endpoints],
        ShuffleEndpoints = endpoints.Length == 0,
        RequestTimeout = TimeSpan.FromSeconds(10),
    });

    /// <summary>Keys no other test uses: a registry prefix and a leader key.</summary>
    public static (string Prefix, string LeaderKey, string MastersPrefix) NewNamespace()
    {
        var root = "/test/" + Guid.NewGuid().ToString("N");
        return (root + "/registry/", root + "/leader", root + "/masters/");
    }
}
