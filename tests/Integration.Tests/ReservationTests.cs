using Sched.V1;
using Scheduler.FrameworkSdk;
using Scheduler.Protocol;
using Xunit;

namespace Scheduler.Integration.Tests;

/// <summary>
/// Dynamic reservations and persistent volumes end to end with real processes: a framework
/// reserves and creates a volume, a task writes to it, the master is SIGKILLed and restarted, the
/// reservation comes back to its role only, a second task reads what the first wrote, then
/// DESTROY + UNRESERVE return everything to the pool.
/// </summary>
public sealed class ReservationTests : IAsyncLifetime
{
    private const string Role = "web";
    private readonly ClusterFixture _cluster = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task Reserved_volume_survives_its_task_and_a_master_restart_and_is_returned_by_destroy_and_unreserve()
    {
        var master = await _cluster.StartMasterAsync();
        var agent = await _cluster.StartAgentAsync();
        await using var web = new TestFramework(_cluster.MasterAddress, "it-reserve", Role, failoverTimeout: 60, principal: "it-ops");
        await web.Client.WaitForSubscriptionAsync().WaitAsync(TimeSpan.FromSeconds(30));

        // 1. RESERVE cpus/mem/disk, CREATE a volume, LAUNCH a writer on it — one Accept.
        var offer = await web.TakeOfferAsync(_ => true);
        var volume = ResourceOperations.Volume(offer, 128, "v1", "data");
        var writer = ProcessTask("writer", offer, volume, "echo hello-from-writer > data/note && test -L data");
        await web.Client.AcceptAsync([offer.Id],
        [
            ResourceOperations.Reserve(offer, ResourceOperations.Scalar("cpus", 0.5), ResourceOperations.Scalar("mem", 64), ResourceOperations.Scalar("disk", 256)),
            ResourceOperations.Create(volume),
            ResourceOperations.Launch(writer),
        ], refuseSeconds: 0.1);
        var end = await web.WaitForUpdateAsync(u => u.TaskId == "writer" && u.State.IsTerminal(), TimeSpan.FromSeconds(60));
        Assert.True(end.State == TaskState.TaskFinished, $"writer ended {end.State}: {end.Message}");
        var hostDir = Path.Combine(agent.WorkDir, "volumes", Role, "v1");
        Assert.Equal("hello-from-writer\n", await File.ReadAllTextAsync(Path.Combine(hostDir, "note")));
        Assert.True(File.Exists(Path.Combine(agent.WorkDir, "meta", "resources.pb")), "the agent checkpoints its reserved resources");

        // Removing the writer's sandbox (as the sandbox collector does) leaves the volume's data alone.
        var sandbox = Path.Combine(agent.WorkDir, "sandboxes", web.Client.FrameworkId!, "writer");
        Assert.True(File.Exists(Path.Combine(sandbox, "data", "note")), "the volume is visible in the sandbox at its container_path");
        Directory.Delete(sandbox, recursive: true);
        Assert.True(File.Exists(Path.Combine(hostDir, "note")), "deleting a sandbox must not delete the volume it links to");

        // 2. The master crashes and comes back; the registry brings the reservation back.
        await ClusterFixture.KillAsync(master);
        await _cluster.RestartAsync(master);
        using var probe = new MasterProbe(_cluster.MasterAddress);
        await probe.WaitUntilAsync(async () =>
        {
            var agents = await probe.CallAsync(OperatorMethods.GetAgents, new GetAgentsRequest());
            return agents.Agents.Any(a => a.Status == AgentStatus.AgentActive && a.Total.Any(r => r.Disk?.Persistence?.Id == "v1"));
        }, TimeSpan.FromSeconds(40), "the agent to re-register with its volume");
        var roles = await probe.CallAsync(OperatorMethods.GetRoles, new GetRolesRequest());
        Assert.Equal(256, roles.Roles.Single(r => r.Name == Role).Reserved.Where(r => r.Name == "disk").Sum(r => r.Scalar));

        // 3. Another role gets only unreserved resources; the volume's role gets the volume back.
        await using var batch = new TestFramework(_cluster.MasterAddress, "it-batch", "batch", failoverTimeout: 60);
        var back = await web.TakeOfferAsync(o => ResourceOperations.VolumesIn(o, "v1").Count == 1);
        var again = ResourceOperations.VolumesIn(back, "v1")[0];
        var reader = ProcessTask("reader", back, again, "grep -q hello-from-writer data/note");
        await web.Client.AcceptAsync([back.Id], [ResourceOperations.Launch(reader)], refuseSeconds: 0.1);
        var read = await web.WaitForUpdateAsync(u => u.TaskId == "reader" && u.State.IsTerminal(), TimeSpan.FromSeconds(60));
        Assert.True(read.State == TaskState.TaskFinished, $"reader ended {read.State}: {read.Message}");
        var batchOffer = await batch.TakeOfferAsync(_ => true);
        Assert.All(batch.AllOffers.SelectMany(o => o.Resources), r => Assert.Null(r.Reservation));
        Assert.True(batchOffer.Resources.Where(r => r.Name == "disk").Sum(r => r.Scalar) <= 4096 - 256);
        await batch.Client.DeclineAsync([batchOffer.Id], refuseSeconds: 60);

        // 4. DESTROY the volume and UNRESERVE everything in one call.
        // (An offer made while the reader still held its cpus/mem is declined: wait for all of it.)
        var last = await web.TakeOfferAsync(o => ResourceOperations.VolumesIn(o, "v1").Count == 1
            && ResourceOperations.DynamicallyReserved(o).Where(r => r.Name == "cpus").Sum(r => r.Scalar) == 0.5
            && ResourceOperations.DynamicallyReserved(o).Where(r => r.Name == "mem").Sum(r => r.Scalar) == 64);
        var v1 = ResourceOperations.VolumesIn(last, "v1")[0];
        var reserved = ResourceOperations.DynamicallyReserved(last).ToList();
        var disk = reserved.Single(r => r.Name == "disk");
        disk.Scalar += v1.Scalar;
        await web.Client.AcceptAsync([last.Id], [ResourceOperations.Destroy(v1), ResourceOperations.Unreserve([.. reserved])], refuseSeconds: 0.1);
        await probe.WaitUntilAsync(() => Task.FromResult(!Directory.Exists(hostDir)), TimeSpan.FromSeconds(20), "the agent to delete the destroyed volume");
        var state = (await probe.CallAsync(OperatorMethods.GetAgents, new GetAgentsRequest())).Agents.Single();
        Assert.All(state.Total, r => Assert.True(r.Reservation is null || r.Reservation.Type == Reservation.Types.Type.Static, $"still reserved: {r}"));
        Assert.Equal(4096, state.Total.Where(r => r.Name == "disk").Sum(r => r.Scalar));
        // The whole disk is offered again, to anyone: here the other role, once this framework is gone.
        await web.DisposeAsync();
        await batch.Client.ReviveAsync();
        await batch.TakeOfferAsync(o => o.Resources.Where(r => r.Name == "disk").Sum(r => r.Scalar) == 4096);
    }

    [Fact]
    public async Task Schedctl_reserve_and_unreserve_change_the_agents_total()
    {
        await _cluster.StartMasterAsync();
        var agent = await _cluster.StartAgentAsync();
        var master = _cluster.MasterAddress;

        var reserve = await Schedctl.RunAsync(TimeSpan.FromSeconds(30), "--master", master, "reserve", agent.AgentId, "cpus(ops):1.5;mem(ops):256", "--principal", "admin");
        Assert.True(reserve.ExitCode == 0, reserve.ToString());
        Assert.Contains("agent total now:", reserve.Stdout, StringComparison.Ordinal);
        var agents = await Schedctl.RunAsync(TimeSpan.FromSeconds(30), "--master", master, "agents", "--json");
        Assert.True(agents.ExitCode == 0, agents.ToString());
        var state = Google.Protobuf.JsonParser.Default.Parse<GetAgentsResponse>(agents.Stdout).Agents.Single();
        Assert.Equal(1.5, state.Total.Where(r => r.Name == "cpus" && r.Reservation is { Role: "ops", Type: Reservation.Types.Type.Dynamic, Principal: "admin" }).Sum(r => r.Scalar));
        Assert.True(File.Exists(Path.Combine(agent.WorkDir, "meta", "resources.pb")));

        var list = await Schedctl.RunAsync(TimeSpan.FromSeconds(30), "--master", master, "reservations");
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Contains("ops", list.Stdout, StringComparison.Ordinal);
        Assert.Contains("dynamic", list.Stdout, StringComparison.Ordinal);
        Assert.Contains("admin", list.Stdout, StringComparison.Ordinal); // the principal unreserve needs

        var wrong = await Schedctl.RunAsync(TimeSpan.FromSeconds(30), "--master", master, "unreserve", agent.AgentId, "cpus:1");
        Assert.NotEqual(0, wrong.ExitCode);
        Assert.Contains("names no role", wrong.Stderr, StringComparison.Ordinal);

        // The wrong principal is named as such, with the one to give (not "the resources are not unused").
        var wrongPrincipal = await Schedctl.RunAsync(TimeSpan.FromSeconds(30), "--master", master, "unreserve", agent.AgentId, "cpus(ops):1.5;mem(ops):256", "--principal", "mallory");
        Assert.Equal(1, wrongPrincipal.ExitCode);
        Assert.Contains("was made by principal 'admin', not 'mallory'; unreserve it with --principal admin", wrongPrincipal.Stderr, StringComparison.Ordinal);
        var noSuchRole = await Schedctl.RunAsync(TimeSpan.FromSeconds(30), "--master", master, "unreserve", agent.AgentId, "cpus(web):1", "--principal", "admin");
        Assert.Contains("holds no dynamic reservation of cpus for role 'web'", noSuchRole.Stderr, StringComparison.Ordinal);

        var unreserve = await Schedctl.RunAsync(TimeSpan.FromSeconds(30), "--master", master, "unreserve", agent.AgentId, "cpus(ops):1.5;mem(ops):256", "--principal", "admin");
        Assert.True(unreserve.ExitCode == 0, unreserve.ToString());
        using var probe = new MasterProbe(master);
        var after = (await probe.CallAsync(OperatorMethods.GetAgents, new GetAgentsRequest())).Agents.Single();
        Assert.All(after.Total, r => Assert.Null(r.Reservation));
    }

    /// <summary>A process task using the reserved cpus/mem of the offer's role and a volume.</summary>
    private static TaskInfo ProcessTask(string id, Offer offer, Resource volume, string shell)
    {
        var task = new TaskBuilder(id).Shell(shell).Build();
        task.AgentId = offer.AgentId;
        task.Resources.Clear();
        foreach (var (name, value) in new[] { ("cpus", 0.5), ("mem", 64.0) })
        {
            task.Resources.Add(new Resource
            {
                Name = name,
                Scalar = value,
                AllocationRole = offer.Role,
                Reservation = new Reservation { Type = Reservation.Types.Type.Dynamic, Role = offer.Role, Principal = "it-ops" },
            });
        }
        var v = volume.Clone();
        v.Reservation.Principal = "it-ops";
        v.Disk.Persistence.Principal = "it-ops";
        task.Resources.Add(v);
        return task;
    }
}
