using Sched.V1;
using Scheduler.Master.State;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Loop;

/// <summary>
/// What the master keeps per task, kept small: at 100,000 tasks every object and string copied
/// per task costs megabytes. A task is one <see cref="TaskEntry"/> that shares its ids with the
/// framework and agent entries, its resource list with every task of the same shape
/// (<see cref="SharedResources"/>) and its role string; the rest of the launched
/// <see cref="TaskInfo"/> and the latest status are kept serialized (a uuid as 16 bytes).
/// Operators get full copies built on demand (<see cref="TaskEntry.ToRecord"/>), which also keeps
/// the loop's live objects out of responses serialized on other threads.
/// </summary>
public sealed partial class MasterLoop
{
    private readonly SharedResources _sharedResources = new();
    private readonly StringPool _strings = new();

    /// <summary>The entry of an agent (tests of what the master keeps per agent); on the loop only.</summary>
    internal AgentEntry? FindAgent(string agentId) => _agents.Find(agentId);

    /// <summary>Shares what an agent's info has in common with other agents: its configured
    /// resources (hosts of one machine type report equal lists) become pooled objects, and the
    /// pooled list is returned; its version string is pooled. The info is the loop's own (parsed
    /// from the agent's message or the registry) and is never mutated afterwards.</summary>
    private IReadOnlyList<Resource> ShareAgentInfo(AgentInfo info)
    {
        info.Version = _strings.Intern(info.Version);
        var shared = _sharedResources.InternAll(info.Resources, "");
        info.Resources.Capacity = info.Resources.Count; // parsing leaves room for 8
        return shared;
    }

    /// <summary>An entry for a task an agent reports on (re-)registration, sharing what the
    /// master already holds like a launched one.</summary>
    private TaskEntry ReportedEntry(TaskRecord reported, FrameworkEntry fw, AgentEntry agent, string role)
    {
        role = _strings.Intern(role); // parsed per task from the agent's message
        var info = reported.Info ?? new TaskInfo { TaskId = reported.TaskId, Name = reported.Name };
        info.TaskId = reported.TaskId;
        info.AgentId = agent.Id;
        if (info.Resources.Count == 0)
        {
            info.Resources.Add(reported.Resources);
        }
        if (info.Labels.Count == 0)
        {
            info.Labels.Add(reported.Labels);
        }
        if (info.Container is null && reported.ContainerType != ContainerInfo.Types.Type.Unspecified)
        {
            info.Container = new ContainerInfo { Type = reported.ContainerType };
        }
        var resources = _sharedResources.InternAll(info.Resources, role);
        var entry = TaskEntry.Launched(info, fw.Id, agent.Id, role, resources, reported.State);
        if (reported.Status is { } status)
        {
            entry.SetStatus(status);
        }
        entry.StatusAcknowledged = reported.StatusAcknowledged;
        return entry;
    }
}
