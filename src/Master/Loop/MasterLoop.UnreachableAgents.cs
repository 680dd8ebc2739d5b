using Sched.V1;
using Scheduler.Master.Registry;
using Scheduler.Master.State;

namespace Scheduler.Master.Loop;

/// <summary>
/// Garbage collection of unreachable agents, as Mesos' registry GC does: an agent unreachable for
/// longer than <see cref="MasterOptions.MaxUnreachableAgentAge"/>, or beyond the
/// <see cref="MasterOptions.MaxUnreachableAgents"/> most recently lost, is forgotten — its
/// registry record deleted, its tasks dropped. Without this every agent ever lost stays in the
/// registry, the master's memory and every operator snapshot for good. A forgotten agent that
/// comes back registers as an agent the master does not know, and reconciliation of its tasks
/// answers TASK_UNKNOWN.
/// </summary>
public sealed partial class MasterLoop
{
    private DateTimeOffset _nextUnreachableCollection;

    /// <summary>Forgets the unreachable agents past the age or count bound (at most once a second).</summary>
    private void CollectUnreachableAgents(DateTimeOffset now)
    {
        if (now < _nextUnreachableCollection)
        {
            return;
        }
        _nextUnreachableCollection = now + TimeSpan.FromSeconds(1);
        var unreachable = _agents.LostLongestFirst();
        var overCount = Math.Max(0, unreachable.Count - _options.MaxUnreachableAgents);
        for (var i = 0; i < unreachable.Count; i++)
        {
            var agent = unreachable[i];
            var age = now - agent.UnreachableSince!.Value;
            if (i < overCount)
            {
                ForgetAgent(agent, $"more than {_options.MaxUnreachableAgents} agents are unreachable and it is among the longest lost");
            }
            else if (age > _options.MaxUnreachableAgentAge)
            {
                ForgetAgent(agent, $"unreachable for {age.TotalSeconds:0} s, longer than the limit of {_options.MaxUnreachableAgentAge.TotalSeconds:0} s");
            }
            else
            {
                break; // ordered by age: the rest are younger
            }
        }
    }

    /// <summary>Removes an unreachable agent from the master, the allocator and the registry.</summary>
    private void ForgetAgent(AgentEntry agent, string why)
    {
        _tasks.RemoveAgent(agent.Id);
        if (agent.InAllocator)
        {
            _allocator.RemoveAgent(agent.Id);
            agent.InAllocator = false;
        }
        _agents.Remove(agent.Id);
        Persist(RegistryWrite.Delete(RegistryRecords.AgentKey(agent.Id)));
        Telemetry.MasterLog.AgentForgotten(_logger, agent.Id, why);
        Emit(new OperatorEvent { AgentRemoved = new OperatorEvent.Types.AgentRemoved { AgentId = agent.Id } });
    }
}
