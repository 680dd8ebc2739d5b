namespace Scheduler.Master.State;

/// <summary>
/// The frameworks a leading master knows, by id; the tombstones of removed ones (their ids are
/// refused for good, up to <see cref="MasterOptions.MaxRemovedFrameworks"/>, oldest dropped
/// first); and the recently removed frameworks kept with their completed tasks for operators (up
/// to <see cref="MasterOptions.MaxCompletedFrameworks"/>). What a framework runs is the
/// <see cref="TaskBook"/>'s; what it is offered, the <see cref="OfferBook"/>'s.
/// Owned by the master loop (not thread-safe).
/// </summary>
/// <remarks>
/// Invariants: a known id is never tombstoned (a framework is tombstoned as it is removed, and
/// a tombstoned id is never added again); both bounds hold after every call.
/// </remarks>
public sealed class FrameworkBook(MasterOptions options)
{
    private readonly Dictionary<string, FrameworkEntry> _frameworks = new(StringComparer.Ordinal);
    private readonly HashSet<string> _tombstones = new(StringComparer.Ordinal);

    /// <summary>The ids of <see cref="_tombstones"/>, oldest removal first (for the bound).</summary>
    private readonly Queue<string> _tombstoneOrder = new();

    /// <summary>Removed frameworks, most recent last.</summary>
    private readonly LinkedList<RemovedFramework> _removed = new();

    public int Count => _frameworks.Count;

    /// <summary>Every known (not removed) framework.</summary>
    public IEnumerable<FrameworkEntry> All => _frameworks.Values;

    /// <summary>Recently removed frameworks with their completed tasks, oldest removal first.</summary>
    public IEnumerable<RemovedFramework> Removed => _removed;

    /// <summary>How many tombstones are held.</summary>
    public int TombstoneCount => _tombstones.Count;

    public bool TryGet(string frameworkId, out FrameworkEntry framework) => _frameworks.TryGetValue(frameworkId, out framework!);

    /// <summary>The framework of <paramref name="frameworkId"/>, or null.</summary>
    public FrameworkEntry? Find(string frameworkId) => _frameworks.GetValueOrDefault(frameworkId);

    public bool Contains(string frameworkId) => _frameworks.ContainsKey(frameworkId);

    /// <summary>Whether the id belongs to a removed framework (torn down, failed over too late).</summary>
    public bool IsRemoved(string frameworkId) => _tombstones.Contains(frameworkId);

    /// <summary>Starts tracking <paramref name="framework"/>. Precondition: its id is neither known nor removed.</summary>
    public void Add(FrameworkEntry framework)
    {
        ArgumentNullException.ThrowIfNull(framework);
        if (_tombstones.Contains(framework.Id))
        {
            throw new InvalidOperationException($"framework {framework.Id} was removed; its id cannot be used again");
        }
        _frameworks.Add(framework.Id, framework);
    }

    /// <summary>
    /// Removes <paramref name="framework"/>: it joins the recently removed ones with
    /// <paramref name="completed"/> (its completed tasks, which the caller no longer changes) and
    /// its id is tombstoned. Returns the ids whose tombstones fell off the bound (the caller
    /// deletes their registry records).
    /// </summary>
    public List<string> Remove(FrameworkEntry framework, IReadOnlyCollection<TaskEntry> completed)
    {
        ArgumentNullException.ThrowIfNull(framework);
        if (!_frameworks.TryGetValue(framework.Id, out var held) || held != framework)
        {
            throw new InvalidOperationException($"framework {framework.Id} is not the one this book holds");
        }
        _frameworks.Remove(framework.Id);
        _removed.AddLast(new RemovedFramework(framework, completed));
        while (_removed.Count > options.MaxCompletedFrameworks)
        {
            _removed.RemoveFirst();
        }
        return AddTombstone(framework.Id);
    }

    /// <summary>Refuses <paramref name="frameworkId"/> for good (a removed framework, as the
    /// registry's tombstones list them at the start of a term). Returns the ids whose tombstones
    /// fell off the bound.</summary>
    public List<string> AddTombstone(string frameworkId)
    {
        if (_frameworks.ContainsKey(frameworkId))
        {
            throw new InvalidOperationException($"framework {frameworkId} is known; remove it rather than tombstone it");
        }
        if (_tombstones.Add(frameworkId))
        {
            _tombstoneOrder.Enqueue(frameworkId);
        }
        var dropped = new List<string>();
        while (_tombstoneOrder.Count > options.MaxRemovedFrameworks && _tombstoneOrder.TryDequeue(out var oldest))
        {
            _tombstones.Remove(oldest);
            dropped.Add(oldest);
        }
        return dropped;
    }

    /// <summary>The disconnected frameworks whose failover deadline is at or before <paramref name="now"/> (a copy).</summary>
    public List<FrameworkEntry> PastFailoverDeadline(DateTimeOffset now) =>
        [.. _frameworks.Values.Where(f => f.Subscription is null && f.FailoverDeadline <= now)];

    /// <summary>The principal of every framework known or recently removed, by id.</summary>
    public Dictionary<string, string> Principals()
    {
        var principals = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var fw in _frameworks.Values)
        {
            principals[fw.Id] = fw.Info.Principal;
        }
        foreach (var removed in _removed)
        {
            principals.TryAdd(removed.Framework.Id, removed.Framework.Info.Principal);
        }
        return principals;
    }
}

/// <summary>A removed framework kept for operators, with its completed tasks as they were at removal.</summary>
public sealed record RemovedFramework(FrameworkEntry Framework, IReadOnlyCollection<TaskEntry> Completed);
