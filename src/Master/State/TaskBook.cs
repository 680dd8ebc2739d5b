using Sched.V1;

namespace Scheduler.Master.State;

/// <summary>
/// Every task a leading master tracks: the live ones, indexed by framework (and task id) and by
/// agent, and each framework's bounded history of completed ones (by id, latest wins) with its
/// finished/failed counts. Task lifecycles are decided by the loop; this book keeps the indexes
/// consistent. Owned by the master loop (not thread-safe).
/// </summary>
/// <remarks>
/// Invariants: a task is live in its framework's index exactly when it is in its agent's index;
/// a framework has at most one live task per id; its history holds at most
/// <see cref="MasterOptions.MaxCompletedTasksPerFramework"/> tasks, oldest dropped first.
/// </remarks>
public sealed class TaskBook(MasterOptions options)
{
    private readonly Dictionary<string, FrameworkTasks> _byFramework = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<TaskEntry>> _byAgent = new(StringComparer.Ordinal);

    /// <summary>How many tasks are live.</summary>
    public int LiveCount { get; private set; }

    /// <summary>Every live task.</summary>
    public IEnumerable<TaskEntry> AllLive => _byFramework.Values.SelectMany(f => f.Live.Values);

    /// <summary>The live task <paramref name="taskId"/> of a framework, or null.</summary>
    public TaskEntry? Live(string frameworkId, string taskId) =>
        _byFramework.TryGetValue(frameworkId, out var f) ? f.Live.GetValueOrDefault(taskId) : null;

    public bool TryGetLive(string frameworkId, string taskId, out TaskEntry task)
    {
        task = Live(frameworkId, taskId)!;
        return task is not null;
    }

    public bool IsLive(string frameworkId, string taskId) => _byFramework.TryGetValue(frameworkId, out var f) && f.Live.ContainsKey(taskId);

    /// <summary>The latest completed task <paramref name="taskId"/> of a framework still in its history, or null.</summary>
    public TaskEntry? LatestCompleted(string frameworkId, string taskId) =>
        _byFramework.TryGetValue(frameworkId, out var f) ? f.CompletedById.GetValueOrDefault(taskId) : null;

    /// <summary>The framework's live tasks (a view; do not change the book while iterating it).</summary>
    public IReadOnlyCollection<TaskEntry> LiveOf(string frameworkId) =>
        _byFramework.TryGetValue(frameworkId, out var f) ? f.Live.Values : [];

    /// <summary>The framework's completed tasks, oldest first (a view).</summary>
    public IReadOnlyCollection<TaskEntry> CompletedOf(string frameworkId) =>
        _byFramework.TryGetValue(frameworkId, out var f) ? f.Completed : [];

    /// <summary>The live tasks on an agent (a view; do not change the book while iterating it).</summary>
    public IReadOnlyCollection<TaskEntry> OnAgent(string agentId) =>
        _byAgent.TryGetValue(agentId, out var set) ? set : [];

    /// <summary>How many of the framework's tasks finished, and how many ended otherwise, while this master led.</summary>
    public (uint Finished, uint Failed) Counts(string frameworkId) =>
        _byFramework.TryGetValue(frameworkId, out var f) ? (f.Finished, f.Failed) : (0, 0);

    /// <summary>Tracks <paramref name="task"/> as live. Precondition: its framework has no live
    /// task of that id (the caller checks; a duplicate is refused with an exception, nothing changed).</summary>
    public void Add(TaskEntry task)
    {
        ArgumentNullException.ThrowIfNull(task);
        var f = Framework(task.FrameworkId);
        if (!f.Live.TryAdd(task.TaskId, task))
        {
            throw new InvalidOperationException($"framework {task.FrameworkId} already has a live task '{task.TaskId}'");
        }
        if (!_byAgent.TryGetValue(task.AgentId, out var onAgent))
        {
            _byAgent[task.AgentId] = onAgent = [];
        }
        onAgent.Add(task);
        LiveCount++;
    }

    /// <summary>Stops tracking <paramref name="task"/> as live, if it is the live task of its id;
    /// returns whether it was.</summary>
    public bool RemoveLive(TaskEntry task)
    {
        ArgumentNullException.ThrowIfNull(task);
        return _byFramework.TryGetValue(task.FrameworkId, out var f) && RemoveLive(f, task);
    }

    /// <summary>The task ended: it leaves the live indexes (if it was live) and joins the history.</summary>
    public void Complete(TaskEntry task)
    {
        ArgumentNullException.ThrowIfNull(task);
        var f = Framework(task.FrameworkId);
        RemoveLive(f, task);
        AddCompleted(f, task);
    }

    /// <summary>Adds an ended task to its framework's history (replacing an earlier one of the
    /// same id) and counts it; the oldest beyond the bound are dropped. The task must not be live.</summary>
    public void AddCompleted(TaskEntry task)
    {
        ArgumentNullException.ThrowIfNull(task);
        var f = Framework(task.FrameworkId);
        if (f.Live.TryGetValue(task.TaskId, out var live) && live == task)
        {
            throw new InvalidOperationException($"task '{task.TaskId}' of framework {task.FrameworkId} is live; complete it instead");
        }
        AddCompleted(f, task);
    }

    /// <summary>Stops tracking every live task on an agent (it is gone or forgotten); returns them,
    /// for the caller to tell their frameworks.</summary>
    public List<TaskEntry> RemoveAgent(string agentId)
    {
        if (!_byAgent.Remove(agentId, out var onAgent))
        {
            return [];
        }
        foreach (var task in onAgent)
        {
            _byFramework[task.FrameworkId].Live.Remove(task.TaskId);
        }
        LiveCount -= onAgent.Count;
        return [.. onAgent];
    }

    /// <summary>Forgets a removed framework; returns its history, which the book no longer changes.
    /// Precondition: it has no live task (complete them first).</summary>
    public IReadOnlyCollection<TaskEntry> RemoveFramework(string frameworkId)
    {
        if (!_byFramework.TryGetValue(frameworkId, out var f))
        {
            return [];
        }
        if (f.Live.Count > 0)
        {
            throw new InvalidOperationException($"framework {frameworkId} still has {f.Live.Count} live tasks; complete them before removing it");
        }
        _byFramework.Remove(frameworkId);
        return f.Completed;
    }

    private bool RemoveLive(FrameworkTasks f, TaskEntry task)
    {
        if (!f.Live.TryGetValue(task.TaskId, out var live) || live != task)
        {
            return false;
        }
        f.Live.Remove(task.TaskId);
        _byAgent[task.AgentId].Remove(task);
        LiveCount--;
        return true;
    }

    private void AddCompleted(FrameworkTasks f, TaskEntry task)
    {
        if (task.State == TaskState.TaskFinished)
        {
            f.Finished++;
        }
        else
        {
            f.Failed++;
        }
        if (f.CompletedById.Remove(task.TaskId, out var previous))
        {
            f.Completed.Remove(previous);
        }
        f.Completed.AddLast(task);
        f.CompletedById[task.TaskId] = task;
        while (f.Completed.Count > options.MaxCompletedTasksPerFramework && f.Completed.First is { } first)
        {
            f.Completed.RemoveFirst();
            if (f.CompletedById.TryGetValue(first.Value.TaskId, out var t) && t == first.Value)
            {
                f.CompletedById.Remove(first.Value.TaskId);
            }
        }
    }

    private FrameworkTasks Framework(string frameworkId)
    {
        if (!_byFramework.TryGetValue(frameworkId, out var f))
        {
            _byFramework[frameworkId] = f = new FrameworkTasks();
        }
        return f;
    }

    /// <summary>One framework's tasks.</summary>
    private sealed class FrameworkTasks
    {
        public Dictionary<string, TaskEntry> Live { get; } = new(StringComparer.Ordinal);

        /// <summary>Ended tasks, oldest first (bounded).</summary>
        public LinkedList<TaskEntry> Completed { get; } = new();

        /// <summary>Index of <see cref="Completed"/> by task id (latest wins).</summary>
        public Dictionary<string, TaskEntry> CompletedById { get; } = new(StringComparer.Ordinal);

        public uint Finished { get; set; }

        public uint Failed { get; set; }
    }
}
