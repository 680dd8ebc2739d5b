using Grpc.Core;
using Grpc.Health.V1;
using Scheduler.Etcd;
using Scheduler.Master.Tests.Harness;
using Xunit;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace Scheduler.Master.Tests;

/// <summary><c>grpc.health.v1.Health</c> on masters: SERVING only while leading, so that a load
/// balancer in front of several masters sends traffic to the leader.</summary>
public sealed class HealthServiceTests : IAsyncLifetime
{
    private LocalEtcdCluster _etcd = null!;

    public async Task InitializeAsync() => _etcd = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 1 });

    public async Task DisposeAsync() => await _etcd.DisposeAsync();

    [Fact]
    public async Task A_standalone_master_is_serving_overall_and_for_each_sched_service()
    {
        await using var master = await MasterFixture.StartAsync();
        var health = new Health.HealthClient(master.Channel);
        foreach (var service in new[] { "", "sched.v1.Scheduler", "sched.v1.AgentLink", "sched.v1.Operator" })
        {
            Assert.Equal(ServingStatus.Serving, (await CheckAsync(health, service)).Status);
        }
        var e = await Assert.ThrowsAsync<RpcException>(() => CheckAsync(health, "sched.v1.NoSuchService"));
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
    }

    [Fact]
    public async Task The_leader_is_serving_the_follower_not_and_they_flip_when_the_leader_stops()
    {
        await using var a = await MasterFixture.StartOnEtcdAsync(_etcd);
        await using var b = await MasterFixture.StartOnEtcdAsync(_etcd);
        var (leader, follower) = await MasterFixture.LeaderAndFollowerAsync(a, b);
        var leaderHealth = new Health.HealthClient(leader.Channel);
        var followerHealth = new Health.HealthClient(follower.Channel);
        Assert.Equal(ServingStatus.Serving, (await CheckAsync(leaderHealth, "")).Status);
        Assert.Equal(ServingStatus.NotServing, (await CheckAsync(followerHealth, "")).Status);
        Assert.Equal(ServingStatus.NotServing, (await CheckAsync(followerHealth, "sched.v1.Scheduler")).Status);

        // A watcher on the follower sees it become SERVING when it takes over.
        using var watchEnd = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var watch = followerHealth.Watch(new HealthCheckRequest { Service = "" }, cancellationToken: watchEnd.Token);
        Assert.True(await watch.ResponseStream.MoveNext(watchEnd.Token));
        Assert.Equal(ServingStatus.NotServing, watch.ResponseStream.Current.Status);

        await leader.StopAsync();
        Assert.True(await watch.ResponseStream.MoveNext(watchEnd.Token), "the watch ended before the follower took over");
        Assert.Equal(ServingStatus.Serving, watch.ResponseStream.Current.Status);
        Assert.Equal(ServingStatus.Serving, (await CheckAsync(followerHealth, "sched.v1.Scheduler")).Status);
    }

    private static async Task<HealthCheckResponse> CheckAsync(Health.HealthClient client, string service)
        => await client.CheckAsync(new HealthCheckRequest { Service = service }, deadline: DateTime.UtcNow.AddSeconds(10));
}
