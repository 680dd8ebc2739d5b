using Sched.V1;

namespace Scheduler.FrameworkSdk;

/// <summary>
/// What is left of an offer as tasks are carved out of it. Typical use:
/// <code>
/// var left = new OfferResources(offer);
/// while (pending.Count > 0 &amp;&amp; left.TryCarve(builderFor(pending.Peek()), out var task)) { tasks.Add(task); pending.Dequeue(); }
/// await client.LaunchAsync(offer, tasks);
/// </code>
/// A task's resource fits when the offer has the same name with the same reservation role
/// (unreserved matches unreserved) in at least that quantity (scalars), those ranges (ports) or
/// those items (sets).
/// </summary>
public sealed class OfferResources
{
    private readonly ResourcePool _pool;

    /// <summary>Starts from the whole offer.</summary>
    /// <param name="offer">The offer.</param>
    public OfferResources(Offer offer)
    {
        ArgumentNullException.ThrowIfNull(offer);
        Offer = offer;
        _pool = new ResourcePool(offer.Resources);
    }

    /// <summary>The offer this started from.</summary>
    public Offer Offer { get; }

    /// <summary>The resources not yet carved (copies).</summary>
    public IReadOnlyList<Resource> Remaining => _pool.Items.Select(r => r.Clone()).ToList();

    /// <summary>Cpus left.</summary>
    public double Cpus => _pool.Scalar("cpus");

    /// <summary>Memory left (MiB).</summary>
    public double Mem => _pool.Scalar("mem");

    /// <summary>Disk left (MiB).</summary>
    public double Disk => _pool.Scalar("disk");

    /// <summary>The total quantity left of scalar resource <paramref name="name"/>.</summary>
    /// <param name="name">A scalar resource name (<c>cpus</c>, <c>mem</c>, <c>disk</c>, <c>gpus</c>).</param>
    public double Scalar(string name) => _pool.Scalar(name);

    /// <summary>Whether <paramref name="task"/>'s resources fit in what is left.</summary>
    /// <param name="task">A task with explicit resources.</param>
    public bool Fits(TaskInfo task)
    {
        ArgumentNullException.ThrowIfNull(task);
        return _pool.Contains(task.Resources);
    }

    /// <summary>Carves <paramref name="task"/>'s resources out if they fit; false (and nothing
    /// taken) otherwise.</summary>
    /// <param name="task">A task with explicit resources.</param>
    public bool TryTake(TaskInfo task)
    {
        ArgumentNullException.ThrowIfNull(task);
        return _pool.TryTake(task.Resources);
    }

    /// <summary>
    /// Builds the task described by <paramref name="builder"/> from what is left: picks the
    /// quantities (reserved resources of the offer's role first), concrete ports, the agent id and
    /// the allocation role. False (and nothing taken) when it does not fit.
    /// </summary>
    /// <param name="builder">The task's description.</param>
    /// <param name="task">The built task, ready to launch on <see cref="Offer"/>.</param>
    public bool TryCarve(TaskBuilder builder, out TaskInfo task)
    {
        ArgumentNullException.ThrowIfNull(builder);
        task = null!;
        var trial = _pool.Copy();
        var resources = new List<Resource>();
        foreach (var (name, amount) in builder.Scalars)
        {
            var pieces = trial.CarveScalar(name, amount);
            if (pieces is null)
            {
                return false;
            }
            resources.AddRange(pieces);
        }
        if (builder.PortCount > 0 || builder.SpecificPorts.Count > 0)
        {
            var ports = trial.CarvePorts(builder.PortCount, builder.SpecificPorts);
            if (ports is null)
            {
                return false;
            }
            resources.AddRange(ports);
        }
        foreach (var volume in builder.Volumes)
        {
            if (!trial.TryTake([volume]))
            {
                return false;
            }
            resources.Add(volume.Clone());
        }
        foreach (var r in resources.Where(r => string.IsNullOrEmpty(r.AllocationRole)))
        {
            r.AllocationRole = Offer.Role;
        }
        task = builder.BuildWith(Offer.AgentId, resources);
        _pool.TryTake(task.Resources);
        return true;
    }

    /// <summary>Whether <paramref name="task"/>'s resources fit in <paramref name="offer"/>.</summary>
    /// <param name="task">A task with explicit resources.</param>
    /// <param name="offer">The offer.</param>
    public static bool Fits(TaskInfo task, Offer offer) => new OfferResources(offer).Fits(task);

    /// <summary>What is left of <paramref name="offer"/> after <paramref name="tasks"/>; throws
    /// <see cref="ArgumentException"/> naming the first task that does not fit.</summary>
    /// <param name="offer">The offer.</param>
    /// <param name="tasks">Tasks with explicit resources.</param>
    public static IReadOnlyList<Resource> Remainder(Offer offer, IEnumerable<TaskInfo> tasks)
    {
        ArgumentNullException.ThrowIfNull(tasks);
        var left = new OfferResources(offer);
        foreach (var task in tasks)
        {
            if (!left.TryTake(task))
            {
                throw new ArgumentException($"Task '{task.TaskId}' does not fit in what is left of offer '{offer.Id}' ({Describe(left.Remaining)}).", nameof(tasks));
            }
        }
        return left.Remaining;
    }

    /// <summary>The sum of scalar resource <paramref name="name"/> in <paramref name="resources"/>.</summary>
    /// <param name="resources">Resources.</param>
    /// <param name="name">A scalar name.</param>
    public static double Scalar(IEnumerable<Resource> resources, string name) =>
        ResourcePool.SumScalar(resources, name);

    /// <summary>A short text form: <c>cpus:1.5;mem:256;ports:[31000-31001];cpus(web,dynamic):1;disk(web,dynamic)[pg:data]:512</c>.</summary>
    /// <param name="resources">Resources.</param>
    public static string Describe(IEnumerable<Resource> resources)
    {
        ArgumentNullException.ThrowIfNull(resources);
        var parts = new List<string>();
        foreach (var group in resources.GroupBy(r => (r.Name, Role: r.Reservation?.Role ?? "", Dynamic: r.Reservation?.Type == Reservation.Types.Type.Dynamic,
                     Volume: r.Disk?.Persistence is { Id.Length: > 0 } p ? $"[{p.Id}:{r.Disk.Volume?.ContainerPath}]" : "")))
        {
            var name = group.Key.Role.Length == 0 ? group.Key.Name
                : group.Key.Dynamic ? $"{group.Key.Name}({group.Key.Role},dynamic)" : $"{group.Key.Name}({group.Key.Role})";
            name += group.Key.Volume;
            var first = group.First();
            var value = first.ValueCase switch
            {
                Resource.ValueOneofCase.Scalar => ResourcePool.SumScalar(group, group.Key.Name).ToString(System.Globalization.CultureInfo.InvariantCulture),
                Resource.ValueOneofCase.Ranges => "[" + string.Join(",", group.SelectMany(r => r.Ranges.Range).Select(x => x.Begin == x.End ? $"{x.Begin}" : $"{x.Begin}-{x.End}")) + "]",
                Resource.ValueOneofCase.Set => "{" + string.Join(",", group.SelectMany(r => r.Set.Items)) + "}",
                _ => "?",
            };
            parts.Add(name + ":" + value);
        }
        return string.Join(";", parts);
    }
}
