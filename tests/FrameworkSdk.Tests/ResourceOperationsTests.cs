using Sched.V1;
using Xunit;

namespace Scheduler.FrameworkSdk.Tests;

public sealed class ResourceOperationsTests
{
    private static Offer OfferWithVolume()
    {
        var offer = new Offer { Id = "o1", AgentId = "agent-1", Role = "web" };
        offer.Resources.Add(new Resource { Name = "cpus", Scalar = 2, AllocationRole = "web" });
        offer.Resources.Add(new Resource { Name = "disk", Scalar = 100, AllocationRole = "web" });
        var volume = ResourceOperations.Volume(offer, 300, "v1", "data");
        volume.Reservation.Principal = "p";
        offer.Resources.Add(volume);
        offer.Resources.Add(new Resource
        {
            Name = "cpus",
            Scalar = 1,
            AllocationRole = "web",
            Reservation = new Reservation { Type = Reservation.Types.Type.Dynamic, Role = "web", Principal = "p" },
        });
        return offer;
    }

    [Fact]
    public void Reserve_marks_the_resources_dynamic_for_the_offers_role()
    {
        var op = ResourceOperations.Reserve(OfferWithVolume(), ResourceOperations.Scalar("cpus", 1), ResourceOperations.Scalar("disk", 50));
        Assert.Equal(Operation.OperationOneofCase.Reserve, op.OperationCase);
        Assert.All(op.Reserve.Resources, r =>
        {
            Assert.Equal(Reservation.Types.Type.Dynamic, r.Reservation.Type);
            Assert.Equal("web", r.Reservation.Role);
            Assert.Equal("web", r.AllocationRole);
        });
    }

    [Fact]
    public void Volumes_and_dynamic_reservations_of_an_offer_are_found()
    {
        var offer = OfferWithVolume();
        var volume = Assert.Single(ResourceOperations.VolumesIn(offer));
        Assert.Equal("v1", volume.Disk.Persistence.Id);
        Assert.Empty(ResourceOperations.VolumesIn(offer, "other"));
        var dynamic = Assert.Single(ResourceOperations.DynamicallyReserved(offer));
        Assert.Equal("cpus", dynamic.Name);
        Assert.Throws<ArgumentException>(() => new TaskBuilder("t").Volume(dynamic));
    }

    [Fact]
    public void Carving_never_takes_part_of_a_volume_and_a_task_takes_a_volume_whole()
    {
        var offer = OfferWithVolume();
        var left = new OfferResources(offer);
        Assert.Equal(100, left.Disk);
        Assert.False(left.TryCarve(new TaskBuilder("big").Shell("true").Disk(150), out _));

        var volume = ResourceOperations.VolumesIn(offer, "v1")[0];
        Assert.True(left.TryCarve(new TaskBuilder("db").Shell("true").Cpus(1).Volume(volume), out var task));
        Assert.Contains(task.Resources, r => r.Disk?.Persistence?.Id == "v1" && r.Scalar == 300);
        Assert.Empty(ResourceOperations.VolumesIn(new Offer { Resources = { left.Remaining } }));
        // The volume is used up: a second task cannot have it.
        Assert.False(left.TryCarve(new TaskBuilder("db2").Shell("true").Volume(volume), out _));
    }
}
