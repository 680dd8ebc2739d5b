using Sched.V1;
using Scheduler.Master.Registry;
using Scheduler.Master.Tests.Harness;
using Grpc.Core;
using Xunit;

namespace Scheduler.Master.Tests;

/// <summary>RESERVE, UNRESERVE, CREATE and DESTROY through Accept: each operation, each bad input,
/// persistence across a master restart, and exact accounting throughout.</summary>
public sealed class ReservationOperationTests : IDisposable
{
    private const string Principal = "ops";
    private readonly string _workDir = Directory.CreateTempSubdirectory("sched-master-reserve-").FullName;

    public void Dispose() => Directory.Delete(_workDir, recursive: true);

    private static FrameworkInfo Info(string role = "web")
    {
        var info = TestFramework.DefaultInfo(role);
        info.Principal = Principal;
        return info;
    }

    private static List<Resource> AgentResources() =>
        [Res.Scalar("cpus", 4), Res.Scalar("mem", 4096), Res.Scalar("disk", 1000), Static("cpus", 1, "web")];

    private static Resource Static(string name, double value, string role) =>
        new() { Name = name, Scalar = value, Reservation = new Reservation { Type = Reservation.Types.Type.Static, Role = role } };

    private static Resource Dynamic(string name, double value, string role, string? principal = Principal) =>
        new() { Name = name, Scalar = value, Reservation = new Reservation { Type = Reservation.Types.Type.Dynamic, Role = role, Principal = principal ?? "" } };

    private static Resource Volume(double mib, string role, string id, string path = "data")
    {
        var r = Dynamic("disk", mib, role);
        r.Disk = new DiskInfo
        {
            Persistence = new DiskInfo.Types.Persistence { Id = id, Principal = Principal },
            Volume = new Sched.V1.Volume { ContainerPath = path, Mode = Sched.V1.Volume.Types.Mode.Rw },
        };
        return r;
    }

    private static Operation Reserve(params Resource[] resources) => new() { Reserve = new Operation.Types.Reserve { Resources = { resources } } };

    private static Operation Unreserve(params Resource[] resources) => new() { Unreserve = new Operation.Types.Unreserve { Resources = { resources } } };

    private static Operation Create(params Resource[] volumes) => new() { Create = new Operation.Types.Create { Volumes = { volumes } } };

    private static Operation Destroy(params Resource[] volumes) => new() { Destroy = new Operation.Types.Destroy { Volumes = { volumes } } };

    private static Operation Launch(params TaskInfo[] tasks) => new() { Launch = new Operation.Types.Launch { Tasks = { tasks } } };

    private static AcceptRequest Accept(TestFramework fw, Offer offer, params Operation[] operations) =>
        new() { FrameworkId = fw.FrameworkId, StreamId = fw.StreamId, OfferIds = { offer.Id }, Operations = { operations }, Filters = new Filters { RefuseSeconds = 0 } };

    private static async Task<(Cluster Cluster, TestAgentLink Agent, TestFramework Fw, Offer Offer)> SetupAsync(string? workDir = null)
    {
        var cluster = workDir is null ? await Cluster.StartAsync() : await Cluster.StartOnAsync(workDir);
        var agent = new TestAgentLink(cluster.Master.Channel, AgentResources());
        await agent.ConnectAsync();
        var fw = await cluster.AddFrameworkAsync(Info());
        var offer = await fw.NextOfferAsync();
        return (cluster, agent, fw, offer);
    }

    private static double Scalar(IEnumerable<Resource> resources, string name, Func<Resource, bool> match) =>
        resources.Where(r => r.Name == name && match(r)).Sum(r => r.Scalar);

    private static bool IsDynamic(Resource r, string role) => r.Reservation is { Type: Reservation.Types.Type.Dynamic } res && res.Role == role && r.Disk is null;

    private static async Task<RpcException> RefusedAsync(TestFramework fw, AcceptRequest request)
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => fw.AcceptAsync(request));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        return e;
    }

    [Fact]
    public async Task Reserve_then_launch_in_one_call_uses_the_reservation_and_only_its_role_is_offered_it()
    {
        var (cluster, agent, fw, offer) = await SetupAsync();
        await using var scope = cluster;
        await using var agentScope = agent;
        agent.AutoFinish = false;
        var task = TestFramework.MockTask("t1", offer, [Dynamic("cpus", 1, "web"), Res.Scalar("mem", 64)]);
        await fw.AcceptAsync(Accept(fw, offer, Reserve(Dynamic("cpus", 2, "web"), Dynamic("disk", 500, "web", principal: null)), Launch(task)));
        await fw.AckUntilAsync("t1", TaskState.TaskRunning);

        // The agent heard of the operation (with the full checkpointed list) before the launch.
        var log = agent.Messages.Snapshot();
        var apply = log.First(m => m.MessageCase == MasterMessage.MessageOneofCase.ApplyOperations).ApplyOperations;
        Assert.True(log.ToList().FindIndex(m => m.MessageCase == MasterMessage.MessageOneofCase.ApplyOperations)
            < log.ToList().FindIndex(m => m.MessageCase == MasterMessage.MessageOneofCase.Launch));
        Assert.Equal(2, Scalar(apply.CheckpointedResources, "cpus", r => IsDynamic(r, "web")));
        // The principal is filled in from the framework's.
        Assert.All(apply.CheckpointedResources, r => Assert.Equal(Principal, r.Reservation.Principal));

        var state = Assert.Single(await cluster.Master.GetAgentsAsync());
        Assert.Equal(2, Scalar(state.Total, "cpus", r => IsDynamic(r, "web")));
        Assert.Equal(2, Scalar(state.Total, "cpus", r => r.Reservation is null));
        Assert.Equal(1, Scalar(state.Total, "cpus", r => r.Reservation?.Type == Reservation.Types.Type.Static));
        Assert.Equal(500, Scalar(state.Total, "disk", r => IsDynamic(r, "web")));
        await cluster.Master.AssertAccountingAsync();

        var roles = await cluster.Master.Operator(Scheduler.Protocol.OperatorMethods.GetRoles, new GetRolesRequest());
        var web = roles.Roles.Single(r => r.Name == "web");
        Assert.Equal(3, Res.Get(web.Reserved, "cpus"));
        Assert.Equal(500, Res.Get(web.Reserved, "disk"));

        // The reservation's own role gets the rest of it back (1 reserved cpu is still free).
        var webOffer = await fw.NextOfferAsync(match: o => o.Resources.Any(r => IsDynamic(r, "web") && r.Name == "cpus"));
        Assert.Equal(1, Scalar(webOffer.Resources, "cpus", r => IsDynamic(r, "web")));
        Assert.Equal(500, Scalar(webOffer.Resources, "disk", r => IsDynamic(r, "web")));
        await fw.DeclineAsync(webOffer.Id, refuseSeconds: 3600);

        // Another role never sees the reserved part, only unreserved resources.
        var batch = await cluster.AddFrameworkAsync(TestFramework.DefaultInfo("batch"));
        var batchOffer = await batch.NextOfferAsync();
        Assert.All(batchOffer.Resources, r => Assert.Null(r.Reservation));
        Assert.Equal(500, Res.Get(batchOffer.Resources, "disk"));
        Assert.True(await batch.Offers.NoneWithinAsync(o => o.Resources.Any(r => r.Reservation is not null), TimeSpan.FromMilliseconds(200)));
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task Reserving_more_than_offered_refuses_the_call_and_leaves_the_offer_usable()
    {
        var (cluster, agent, fw, offer) = await SetupAsync();
        await using var scope = cluster;
        await using var agentScope = agent;
        var e = await RefusedAsync(fw, Accept(fw, offer, Reserve(Dynamic("cpus", 9, "web"))));
        Assert.Contains("operation #0 (RESERVE)", e.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("not in the accepted offers", e.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("needs 9", e.Status.Detail, StringComparison.Ordinal);
        Assert.True(await agent.Messages.NoneWithinAsync(m => m.MessageCase == MasterMessage.MessageOneofCase.ApplyOperations, TimeSpan.FromMilliseconds(100)));
        await cluster.Master.AssertAccountingAsync();
        // Nothing changed: the same offer still launches.
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("t1", offer, Res.Of(1, 100))]);
        await fw.NextUpdateAsync("t1", TaskState.TaskStarting);
    }

    [Fact]
    public async Task Operations_on_an_unusable_offer_fail_the_call_naming_the_offer()
    {
        var (cluster, agent, fw, offer) = await SetupAsync();
        await using var scope = cluster;
        await using var agentScope = agent;
        var request = Accept(fw, offer, Reserve(Dynamic("cpus", 1, "web")));
        request.OfferIds[0] = "no-such-offer";
        var e = await Assert.ThrowsAsync<RpcException>(() => fw.AcceptAsync(request));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Contains("no-such-offer", e.Status.Detail, StringComparison.Ordinal);

        var empty = await RefusedAsync(fw, new AcceptRequest { FrameworkId = fw.FrameworkId, StreamId = fw.StreamId, OfferIds = { offer.Id }, Operations = { new Operation() } });
        Assert.Contains("operation #0 is empty", empty.Status.Detail, StringComparison.Ordinal);
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task Reserving_for_a_role_the_framework_is_not_in_is_refused()
    {
        var (cluster, agent, fw, offer) = await SetupAsync();
        await using var scope = cluster;
        await using var agentScope = agent;
        var e = await RefusedAsync(fw, Accept(fw, offer, Reserve(Dynamic("cpus", 1, "batch"))));
        Assert.Contains("not in role 'batch'", e.Status.Detail, StringComparison.Ordinal);

        var noReservation = await RefusedAsync(fw, Accept(fw, offer, Reserve(Res.Scalar("cpus", 1))));
        Assert.Contains("has no reservation", noReservation.Status.Detail, StringComparison.Ordinal);

        var staticOne = await RefusedAsync(fw, Accept(fw, offer, Reserve(Static("cpus", 1, "web"))));
        Assert.Contains("RESERVE makes DYNAMIC", staticOne.Status.Detail, StringComparison.Ordinal);

        var otherPrincipal = await RefusedAsync(fw, Accept(fw, offer, Reserve(Dynamic("cpus", 1, "web", principal: "mallory"))));
        Assert.Contains("principal 'mallory'", otherPrincipal.Status.Detail, StringComparison.Ordinal);
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task Unreserving_what_is_not_dynamically_reserved_is_refused()
    {
        var (cluster, agent, fw, offer) = await SetupAsync();
        await using var scope = cluster;
        await using var agentScope = agent;
        var missing = await RefusedAsync(fw, Accept(fw, offer, Unreserve(Dynamic("cpus", 1, "web"))));
        Assert.Contains("operation #0 (UNRESERVE)", missing.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("not in the accepted offers", missing.Status.Detail, StringComparison.Ordinal);

        var unreserved = await RefusedAsync(fw, Accept(fw, offer, Unreserve(Res.Scalar("cpus", 1))));
        Assert.Contains("is not reserved", unreserved.Status.Detail, StringComparison.Ordinal);

        var staticOne = await RefusedAsync(fw, Accept(fw, offer, Unreserve(Static("cpus", 1, "web"))));
        Assert.Contains("only DYNAMIC ones can be unreserved", staticOne.Status.Detail, StringComparison.Ordinal);

        // Later operations see earlier ones: reserve 1 then unreserve 2 fails at operation #1.
        var tooMuch = await RefusedAsync(fw, Accept(fw, offer, Reserve(Dynamic("cpus", 1, "web")), Unreserve(Dynamic("cpus", 2, "web"))));
        Assert.Contains("operation #1 (UNRESERVE)", tooMuch.Status.Detail, StringComparison.Ordinal);
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task Creating_a_volume_on_unreserved_disk_or_with_a_bad_path_is_refused()
    {
        var (cluster, agent, fw, offer) = await SetupAsync();
        await using var scope = cluster;
        await using var agentScope = agent;
        var unreservedVolume = Volume(100, "web", "v1");
        unreservedVolume.Reservation = null;
        var e = await RefusedAsync(fw, Accept(fw, offer, Create(unreservedVolume)));
        Assert.Contains("operation #0 (CREATE)", e.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("RESERVE the disk", e.Status.Detail, StringComparison.Ordinal);

        var escape = await RefusedAsync(fw, Accept(fw, offer, Reserve(Dynamic("disk", 100, "web")), Create(Volume(100, "web", "v1", "../etc"))));
        Assert.Contains("'..'", escape.Status.Detail, StringComparison.Ordinal);

        var badId = await RefusedAsync(fw, Accept(fw, offer, Reserve(Dynamic("disk", 100, "web")), Create(Volume(100, "web", "../v1"))));
        Assert.Contains("not a valid volume id", badId.Status.Detail, StringComparison.Ordinal);

        var twice = await RefusedAsync(fw, Accept(fw, offer, Reserve(Dynamic("disk", 200, "web")), Create(Volume(100, "web", "v1")), Create(Volume(100, "web", "v1"))));
        Assert.Contains("already exists", twice.Status.Detail, StringComparison.Ordinal);
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task Destroying_an_unknown_volume_or_one_in_use_is_refused()
    {
        var (cluster, agent, fw, offer) = await SetupAsync();
        await using var scope = cluster;
        await using var agentScope = agent;
        agent.AutoFinish = false;
        var unknown = await RefusedAsync(fw, Accept(fw, offer, Destroy(Volume(100, "web", "nope"))));
        Assert.Contains("operation #0 (DESTROY)", unknown.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("no volume 'nope'", unknown.Status.Detail, StringComparison.Ordinal);

        // Reserve + create + launch a task on the volume in one call.
        var volume = Volume(100, "web", "v1");
        var task = TestFramework.MockTask("writer", offer, [Res.Scalar("cpus", 1), volume]);
        await fw.AcceptAsync(Accept(fw, offer, Reserve(Dynamic("disk", 100, "web")), Create(volume), Launch(task)));
        await fw.AckUntilAsync("writer", TaskState.TaskRunning);
        var state = Assert.Single(await cluster.Master.GetAgentsAsync());
        Assert.Equal(100, Scalar(state.Total, "disk", r => r.Disk?.Persistence?.Id == "v1"));
        Assert.Equal(100, Scalar(state.Allocated, "disk", r => r.Disk?.Persistence?.Id == "v1"));
        await cluster.Master.AssertAccountingAsync();

        var next = await fw.NextOfferAsync();
        var inUse = await RefusedAsync(fw, Accept(fw, next, Destroy(volume)));
        Assert.Contains("in use by task 'writer'", inUse.Status.Detail, StringComparison.Ordinal);

        // Destroy in the same call as a launch that uses it: refused too.
        var both = await RefusedAsync(fw, Accept(fw, next, Reserve(Dynamic("disk", 50, "web")), Create(Volume(50, "web", "v2")),
            Launch(TestFramework.MockTask("reader", next, [Res.Scalar("cpus", 1), Volume(50, "web", "v2")])), Destroy(Volume(50, "web", "v2"))));
        Assert.Contains("in use by task 'reader'", both.Status.Detail, StringComparison.Ordinal);
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task A_sub_role_refines_its_parents_static_reservation_and_unreserve_gives_it_back()
    {
        await using var cluster = await Cluster.StartAsync();
        await using var agent = new TestAgentLink(cluster.Master.Channel, [Res.Scalar("cpus", 2), Res.Scalar("mem", 1024), Static("cpus", 2, "eng")]);
        await agent.ConnectAsync();
        var info = Info("eng/web");
        var fw = await cluster.AddFrameworkAsync(info);
        var offer = await fw.NextOfferAsync(match: o => o.Resources.Any(r => r.Reservation?.Role == "eng"));
        var refined = Dynamic("cpus", 1, "eng/web");
        refined.Reservation.RefinedFrom = new Reservation { Type = Reservation.Types.Type.Static, Role = "eng" };

        // Without the capability: refused.
        var e = await RefusedAsync(fw, Accept(fw, offer, Reserve(refined)));
        Assert.Contains("RESERVATION_REFINEMENT", e.Status.Detail, StringComparison.Ordinal);

        info.Capabilities.Add(FrameworkCapability.ReservationRefinement);
        await fw.DisposeAsync();
        var fw2 = await cluster.AddFrameworkAsync(info);
        offer = await fw2.NextOfferAsync(match: o => o.Resources.Any(r => r.Reservation?.Role == "eng"));
        await fw2.AcceptAsync(Accept(fw2, offer, Reserve(refined)));
        var state = Assert.Single(await cluster.Master.GetAgentsAsync());
        Assert.Equal(1, Scalar(state.Total, "cpus", r => r.Reservation?.Role == "eng/web" && r.Reservation.RefinedFrom?.Role == "eng"));
        Assert.Equal(1, Scalar(state.Total, "cpus", r => r.Reservation is { Role: "eng", Type: Reservation.Types.Type.Static }));
        await cluster.Master.AssertAccountingAsync();

        var again = await fw2.NextOfferAsync(match: o => o.Resources.Any(r => r.Reservation?.Role == "eng/web"));
        var offered = again.Resources.Single(r => r.Reservation?.Role == "eng/web");
        await fw2.AcceptAsync(Accept(fw2, again, Unreserve(offered)));
        state = Assert.Single(await cluster.Master.GetAgentsAsync());
        Assert.Equal(2, Scalar(state.Total, "cpus", r => r.Reservation is { Role: "eng", Type: Reservation.Types.Type.Static }));
        Assert.Equal(0, Scalar(state.Total, "cpus", r => r.Reservation?.Role == "eng/web"));
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task An_agent_back_with_fewer_resources_drops_the_reservations_that_no_longer_fit()
    {
        var (cluster, agent, fw, offer) = await SetupAsync();
        await using var scope = cluster;
        await using var agentScope = agent;
        await fw.AcceptAsync(Accept(fw, offer, Reserve(Dynamic("cpus", 3, "web"), Dynamic("mem", 100, "web"))));
        await agent.DisconnectAsync();

        // The same agent id comes back with only 2 unreserved cpus: the 3 reserved ones cannot be
        // carved out of them any more; the mem reservation still fits and stays.
        await using var smaller = new TestAgentLink(cluster.Master.Channel, [Res.Scalar("cpus", 2), Res.Scalar("mem", 4096), Res.Scalar("disk", 1000)]);
        smaller.Info.Id = agent.AgentId;
        var registered = await smaller.ConnectAsync();
        Assert.DoesNotContain(registered.CheckpointedResources, r => r.Name == "cpus");
        Assert.Equal(100, Scalar(registered.CheckpointedResources, "mem", r => IsDynamic(r, "web")));
        var state = Assert.Single(await cluster.Master.GetAgentsAsync());
        Assert.Equal(2, Scalar(state.Total, "cpus", r => r.Reservation is null));
        Assert.Equal(0, Scalar(state.Total, "cpus", r => r.Reservation is not null));
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task Reservations_and_volumes_survive_a_master_restart_and_destroy_plus_unreserve_return_them()
    {
        string agentId;
        await using (var first = await Cluster.StartOnAsync(_workDir))
        {
            await using var agent = new TestAgentLink(first.Master.Channel, AgentResources());
            await agent.ConnectAsync();
            var fw = await first.AddFrameworkAsync(Info());
            var offer = await fw.NextOfferAsync();
            // Accept answers once the registry holds the result.
            await fw.AcceptAsync(Accept(fw, offer, Reserve(Dynamic("cpus", 1, "web"), Dynamic("disk", 300, "web")), Create(Volume(200, "web", "v1"))));
            agentId = agent.AgentId;
        }

        await using (var store = FileRegistryStore.Open(_workDir))
        {
            var snapshot = await RegistryRecords.LoadAsync(store, _workDir, CancellationToken.None);
            var record = snapshot.Agents[agentId];
            Assert.Equal(1, Scalar(record.CheckpointedResources, "cpus", r => IsDynamic(r, "web")));
            Assert.Equal(100, Scalar(record.CheckpointedResources, "disk", r => IsDynamic(r, "web")));
            Assert.Equal(200, Scalar(record.CheckpointedResources, "disk", r => r.Disk?.Persistence?.Id == "v1"));
        }

        await using var cluster = await Cluster.StartOnAsync(_workDir);
        await using var again = new TestAgentLink(cluster.Master.Channel, AgentResources());
        again.Info.Id = agentId;
        var registered = await again.ConnectAsync();
        Assert.Equal(200, Scalar(registered.CheckpointedResources, "disk", r => r.Disk?.Persistence?.Id == "v1"));

        // Another role first: it gets only the unreserved part.
        var batch = await cluster.AddFrameworkAsync(TestFramework.DefaultInfo("batch"));
        var batchOffer = await batch.NextOfferAsync();
        Assert.All(batchOffer.Resources, r => Assert.Null(r.Reservation));
        Assert.Equal(700, Res.Get(batchOffer.Resources, "disk"));
        await batch.DisposeAsync();

        var fw2 = await cluster.AddFrameworkAsync(Info());
        var back = await fw2.NextOfferAsync(match: o => o.Resources.Any(r => r.Disk is not null));
        var volume = back.Resources.Single(r => r.Disk?.Persistence?.Id == "v1");
        Assert.Equal("data", volume.Disk.Volume.ContainerPath);
        Assert.Equal(1, Scalar(back.Resources, "cpus", r => IsDynamic(r, "web")));

        // DESTROY then UNRESERVE everything, in one call; the agent hears of it.
        var reservedDisk = back.Resources.Where(r => IsDynamic(r, "web") && r.Name == "disk").Sum(r => r.Scalar);
        await fw2.AcceptAsync(Accept(fw2, back, Destroy(volume), Unreserve(Dynamic("cpus", 1, "web"), Dynamic("disk", reservedDisk + 200, "web"))));
        var apply = await again.Messages.TakeAsync(m => m.MessageCase == MasterMessage.MessageOneofCase.ApplyOperations, what: "apply_operations");
        Assert.Empty(apply.ApplyOperations.CheckpointedResources);
        Assert.Equal(Operation.OperationOneofCase.Destroy, apply.ApplyOperations.Operations[0].OperationCase);

        var state = Assert.Single(await cluster.Master.GetAgentsAsync());
        Assert.Equal(0, Scalar(state.Total, "cpus", r => r.Reservation?.Type == Reservation.Types.Type.Dynamic));
        Assert.Equal(1000, Scalar(state.Total, "disk", r => r.Reservation is null && r.Disk is null));
        await cluster.Master.AssertAccountingAsync();
    }
}
