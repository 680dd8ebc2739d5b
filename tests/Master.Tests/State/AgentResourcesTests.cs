using Sched.V1;
using Scheduler.Master.State;
using Xunit;

namespace Scheduler.Master.Tests.State;

/// <summary>The owner of one agent's resources, driven directly: reservations and volumes carved
/// out of the configuration, dropped when it no longer holds them, and the granted account.</summary>
public sealed class AgentResourcesTests
{
    private static Resource Scalar(string name, double value, Reservation? reservation = null) =>
        new() { Name = name, Scalar = value, Reservation = reservation };

    private static Reservation Dynamic(string role, string principal = "ops") =>
        new() { Type = Reservation.Types.Type.Dynamic, Role = role, Principal = principal };

    private static Resource Volume(string id, string role, double mb) => new()
    {
        Name = "disk",
        Scalar = mb,
        Reservation = Dynamic(role),
        Disk = new DiskInfo { Persistence = new DiskInfo.Types.Persistence { Id = id } },
    };

    private static readonly IReadOnlyList<Resource> Configured = [Scalar("cpus", 4), Scalar("mem", 4096), Scalar("disk", 1000)];

    [Fact]
    public void Nothing_checkpointed_keeps_the_shared_configured_list_as_the_total()
    {
        var resources = new AgentResources(Configured);
        Assert.Empty(resources.Configure(Configured));
        Assert.Same(Configured, resources.Total);
        Assert.Empty(resources.Checkpointed);
    }

    [Fact]
    public void A_reservation_and_a_volume_are_carved_out_of_the_configuration_and_given_back()
    {
        var resources = new AgentResources(Configured);
        var reserved = Scalar("cpus", 1, Dynamic("eng"));
        Assert.Empty(resources.Convert([Scalar("cpus", 1)], [reserved]));
        Assert.Empty(resources.Convert([Scalar("disk", 100, Dynamic("eng"))], [Volume("data", "eng", 100)]));

        Assert.Equal(2, resources.Checkpointed.Count);
        var total = resources.TotalBag();
        Assert.Equal("cpus:3; cpus(eng):1; mem:4096; disk:900; disk(eng)[data]:100", Canonical(resources.Total));
        Assert.True(total.Contains([reserved]));
        Assert.True(resources.HoldsVolume("data", "eng"));
        Assert.False(resources.HoldsVolume("data", "web"));
        Assert.False(resources.HoldsVolume("logs", "eng"));

        Assert.Empty(resources.Convert([reserved], [Scalar("cpus", 1)]));
        Assert.Single(resources.Checkpointed);
        Assert.Equal("cpus:4; mem:4096; disk:900; disk(eng)[data]:100", Canonical(resources.Total));
    }

    [Fact]
    public void A_reservation_the_smaller_configuration_no_longer_holds_is_dropped_and_returned()
    {
        var resources = new AgentResources(Configured);
        var bigReservation = Scalar("cpus", 3, Dynamic("eng"));
        resources.Convert([Scalar("cpus", 3)], [bigReservation]);
        resources.Convert([Scalar("mem", 512)], [Scalar("mem", 512, Dynamic("eng"))]);

        // The agent comes back with 2 cpus: the 3-cpu reservation cannot be carved out any more.
        var dropped = resources.Configure([Scalar("cpus", 2), Scalar("mem", 4096), Scalar("disk", 1000)]);
        Assert.Equal(bigReservation, Assert.Single(dropped));
        Assert.Equal(Scalar("mem", 512, Dynamic("eng")), Assert.Single(resources.Checkpointed));
        Assert.Equal("cpus:2; mem:3584; mem(eng):512; disk:1000", Canonical(resources.Total));
    }

    [Fact]
    public void Restored_checkpointed_resources_replace_what_was_held()
    {
        var resources = new AgentResources(Configured);
        resources.Convert([Scalar("cpus", 1)], [Scalar("cpus", 1, Dynamic("eng"))]);
        Assert.Empty(resources.Configure(Configured, [Scalar("mem", 100, Dynamic("web"))]));
        Assert.Equal(Scalar("mem", 100, Dynamic("web")), Assert.Single(resources.Checkpointed));
        Assert.Equal("cpus:4; mem:3996; mem(web):100; disk:1000", Canonical(resources.Total));
    }

    [Fact]
    public void Granted_resources_are_counted_converted_reset_and_leave_the_unused_rest()
    {
        var resources = new AgentResources(Configured);
        resources.Grant([Scalar("cpus", 2), Scalar("mem", 1024)]);
        Assert.Equal("cpus:2; mem:3072; disk:1000", Canonical(resources.Unused().ToResources("")));

        resources.Convert([Scalar("cpus", 1)], [Scalar("cpus", 1, Dynamic("eng"))]);
        resources.ConvertGranted([Scalar("cpus", 1)], [Scalar("cpus", 1, Dynamic("eng"))]);
        Assert.Equal("cpus:2; mem:3072; disk:1000", Canonical(resources.Unused().ToResources("")));

        resources.Release([Scalar("mem", 1024)]);
        Assert.Equal("cpus:2; mem:4096; disk:1000", Canonical(resources.Unused().ToResources("")));

        resources.ResetGranted([[Scalar("mem", 10)], [Scalar("mem", 20)]]);
        Assert.Equal("cpus:3; cpus(eng):1; mem:4066; disk:1000", Canonical(resources.Unused().ToResources("")));
    }

    [Fact]
    public void A_mismatched_unreserve_names_whose_reservation_it_is()
    {
        var resources = new AgentResources(Configured);
        resources.Convert([Scalar("cpus", 1)], [Scalar("cpus", 1, Dynamic("eng", "alice"))]);
        Assert.Null(resources.ReservationMismatch("a1", Scalar("cpus", 1, Dynamic("eng", "alice")), "resource #1"));
        Assert.Contains("made by principal 'alice', not 'bob'; unreserve it with --principal alice",
            resources.ReservationMismatch("a1", Scalar("cpus", 1, Dynamic("eng", "bob")), "resource #1"), StringComparison.Ordinal);
        Assert.Contains("agent a1 holds no dynamic reservation of cpus for role 'web'",
            resources.ReservationMismatch("a1", Scalar("cpus", 1, Dynamic("web", "alice")), "resource #1"), StringComparison.Ordinal);
    }

    /// <summary>The scalar resources as text, merged per name, reservation role and volume, in the
    /// order of the configuration's names (cpus, mem, disk), unreserved first.</summary>
    private static string Canonical(IEnumerable<Resource> resources) => string.Join("; ", resources
        .GroupBy(r => (r.Name, Role: r.Reservation?.Role ?? "", Volume: r.Disk?.Persistence?.Id ?? ""))
        .OrderBy(g => Array.IndexOf(["cpus", "mem", "disk"], g.Key.Name)).ThenBy(g => g.Key.Role, StringComparer.Ordinal)
        .Select(g => $"{g.Key.Name}{(g.Key.Role.Length > 0 ? $"({g.Key.Role})" : "")}{(g.Key.Volume.Length > 0 ? $"[{g.Key.Volume}]" : "")}:{g.Sum(r => r.Scalar):0.###}"));
}
