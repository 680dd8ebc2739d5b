using Sched.V1;
using Scheduler.Etcd;
using Scheduler.Master.Tests.Harness;
using Scheduler.Protocol;
using Xunit;

namespace Scheduler.Master.Tests;

/// <summary>Dynamic reservations and volumes made on one master come back on the next leader
/// (etcd registry) when the agent re-registers, and are offered to their role only.</summary>
public sealed class EtcdReservationFailoverTests : IAsyncLifetime
{
    private LocalEtcdCluster _etcd = null!;

    public async Task InitializeAsync() => _etcd = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 1 });

    public async Task DisposeAsync() => await _etcd.DisposeAsync();

    private static Resource Reserved(string name, double value) =>
        new() { Name = name, Scalar = value, Reservation = new Reservation { Type = Reservation.Types.Type.Dynamic, Role = "web" } };

    [Fact]
    public async Task Reservations_and_volumes_come_back_on_the_new_leader()
    {
        await using var a = await MasterFixture.StartOnEtcdAsync(_etcd);
        await using var b = await MasterFixture.StartOnEtcdAsync(_etcd);
        var (leader, follower) = await MasterFixture.LeaderAndFollowerAsync(a, b);

        List<Resource> configured = [Res.Scalar("cpus", 4), Res.Scalar("mem", 4096), Res.Scalar("disk", 1000)];
        var agent = new TestAgentLink(leader.Channel, configured);
        await agent.ConnectAsync();
        var fw = new TestFramework(leader.Channel, TestFramework.DefaultInfo("web", failoverSeconds: 120));
        await fw.SubscribeAsync();
        var offer = await fw.NextOfferAsync();
        var volume = Reserved("disk", 300);
        volume.Disk = new DiskInfo { Persistence = new DiskInfo.Types.Persistence { Id = "v1" }, Volume = new Volume { ContainerPath = "data" } };
        await fw.AcceptAsync(new AcceptRequest
        {
            FrameworkId = fw.FrameworkId,
            StreamId = fw.StreamId,
            OfferIds = { offer.Id },
            Operations =
            {
                new Operation { Reserve = new Operation.Types.Reserve { Resources = { Reserved("cpus", 2), Reserved("disk", 300) } } },
                new Operation { Create = new Operation.Types.Create { Volumes = { volume } } },
            },
        });
        var agentId = agent.AgentId;
        await fw.DisposeAsync();
        await agent.DisposeAsync();

        await leader.StopAsync();
        await Poll.UntilAsync(async () => await follower.RoleAsync() is "leader" or "recovering", TimeSpan.FromSeconds(20), "the follower to take over");
        await using var again = new TestAgentLink(follower.Channel, configured);
        again.Info.Id = agentId;
        var registered = await again.ConnectAsync();
        Assert.Contains(registered.CheckpointedResources, r => r.Disk?.Persistence?.Id == "v1");
        Assert.Contains(registered.CheckpointedResources, r => r.Name == "cpus" && r.Scalar == 2);

        var state = Assert.Single(await follower.GetAgentsAsync());
        Assert.Equal(2, state.Total.Where(r => r.Name == "cpus" && r.Reservation?.Role == "web").Sum(r => r.Scalar));
        Assert.Equal(300, state.Total.Where(r => r.Disk?.Persistence?.Id == "v1").Sum(r => r.Scalar));
        await follower.AssertAccountingAsync();

        await using var other = new TestFramework(follower.Channel, TestFramework.DefaultInfo("batch"));
        await other.SubscribeAsync();
        var batchOffer = await other.NextOfferAsync(TimeSpan.FromSeconds(20));
        Assert.All(batchOffer.Resources, r => Assert.Null(r.Reservation));
        Assert.Equal(700, Res.Get(batchOffer.Resources, "disk"));
    }
}
