using Sched.V1;

namespace Scheduler.FrameworkSdk;

/// <summary>
/// Builders for Accept's resource operations (pass them to
/// <see cref="SchedulerClient.AcceptAsync"/>, before any LAUNCH that uses their result):
/// <code>
/// var disk = ResourceOperations.Scalar("disk", 512);
/// var volume = ResourceOperations.Volume(offer, 512, "pg-data", "data");
/// await client.AcceptAsync([offer.Id], [
///     ResourceOperations.Reserve(offer, disk),
///     ResourceOperations.Create(volume),
///     ResourceOperations.Launch(new TaskBuilder("pg").Shell("…").Cpus(1).Mem(256).Volume(volume).Build(…))]);
/// </code>
/// Reservations are made for the offer's role (the master refuses other roles) and carry the
/// framework's principal. Reserved resources are offered afterwards only to that role (and its
/// sub-roles), also after agent and master restarts, until UNRESERVE.
/// </summary>
public static class ResourceOperations
{
    /// <summary>An unreserved scalar resource (<c>cpus</c>, <c>mem</c>, <c>disk</c>, <c>gpus</c>).</summary>
    public static Resource Scalar(string name, double value) => new() { Name = name, Scalar = value };

    /// <summary>RESERVE <paramref name="resources"/> (unreserved, taken from <paramref name="offer"/>)
    /// for the offer's role.</summary>
    /// <param name="offer">The offer the resources come from.</param>
    /// <param name="resources">Unreserved resources; their reservation is set here.</param>
    public static Operation Reserve(Offer offer, params Resource[] resources)
    {
        ArgumentNullException.ThrowIfNull(offer);
        var op = new Operation.Types.Reserve();
        op.Resources.Add(resources.Select(r => Reserved(r, offer.Role)));
        return new Operation { Reserve = op };
    }

    /// <summary>UNRESERVE dynamically reserved resources as the offer lists them (see <see cref="DynamicallyReserved"/>).</summary>
    public static Operation Unreserve(params Resource[] resources) =>
        new() { Unreserve = new Operation.Types.Unreserve { Resources = { resources.Select(r => r.Clone()) } } };

    /// <summary>CREATE persistent volumes (see <see cref="Volume"/>) on reserved disk of the offer.</summary>
    public static Operation Create(params Resource[] volumes) =>
        new() { Create = new Operation.Types.Create { Volumes = { volumes.Select(v => v.Clone()) } } };

    /// <summary>DESTROY persistent volumes as the offer lists them (see <see cref="VolumesIn"/>); the
    /// data is deleted and the disk stays reserved.</summary>
    public static Operation Destroy(params Resource[] volumes) =>
        new() { Destroy = new Operation.Types.Destroy { Volumes = { volumes.Select(v => v.Clone()) } } };

    /// <summary>LAUNCH <paramref name="tasks"/>.</summary>
    public static Operation Launch(params TaskInfo[] tasks) =>
        new() { Launch = new Operation.Types.Launch { Tasks = { tasks } } };

    /// <summary>
    /// A persistent volume of <paramref name="mib"/> MiB of disk dynamically reserved for the offer's
    /// role, named <paramref name="id"/> (letters, digits, <c>._-</c>; unique per role on the agent),
    /// seen by tasks at <paramref name="containerPath"/> (relative to their sandbox).
    /// </summary>
    public static Resource Volume(Offer offer, double mib, string id, string containerPath)
    {
        ArgumentNullException.ThrowIfNull(offer);
        ArgumentException.ThrowIfNullOrWhiteSpace(id);
        ArgumentException.ThrowIfNullOrWhiteSpace(containerPath);
        var r = Reserved(Scalar("disk", mib), offer.Role);
        r.Disk = new DiskInfo
        {
            Persistence = new DiskInfo.Types.Persistence { Id = id },
            Volume = new Sched.V1.Volume { ContainerPath = containerPath, Mode = Sched.V1.Volume.Types.Mode.Rw },
        };
        return r;
    }

    /// <summary>The persistent volumes in <paramref name="offer"/> (optionally only <paramref name="id"/>).</summary>
    public static IReadOnlyList<Resource> VolumesIn(Offer offer, string? id = null)
    {
        ArgumentNullException.ThrowIfNull(offer);
        return offer.Resources.Where(r => r.Disk?.Persistence is { Id.Length: > 0 } p && (id is null || p.Id == id)).Select(r => r.Clone()).ToList();
    }

    /// <summary>The dynamically reserved resources of <paramref name="offer"/> that are not volumes
    /// (what UNRESERVE can take back).</summary>
    public static IReadOnlyList<Resource> DynamicallyReserved(Offer offer)
    {
        ArgumentNullException.ThrowIfNull(offer);
        return offer.Resources.Where(r => r.Reservation?.Type == Reservation.Types.Type.Dynamic && r.Disk is null).Select(r => r.Clone()).ToList();
    }

    private static Resource Reserved(Resource r, string role)
    {
        var copy = r.Clone();
        copy.Reservation = new Reservation { Type = Reservation.Types.Type.Dynamic, Role = role };
        copy.AllocationRole = role;
        return copy;
    }
}
