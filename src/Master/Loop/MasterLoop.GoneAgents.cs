using Sched.V1;
using Scheduler.Master.Registry;
using Scheduler.Master.State;
using Scheduler.Master.Telemetry;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Loop;

/// <summary>
/// Operator-marked gone agents (Mesos' MarkAgentGone): an agent an operator knows will not come
/// back in its old state (decommissioned, lost with its disks). Unlike an unreachable agent, whose
/// tasks may still run and come back, a gone agent's tasks are given up at once, and its id is
/// refused for good: the registry keeps it as <see cref="AgentRecord.Types.State.Gone"/>.
/// </summary>
public sealed partial class MasterLoop
{
    /// <summary>Marks an agent gone; returns the answer and the registry write to await before
    /// answering (the agent must stay gone across failovers once the operator is told so).</summary>
    public (MarkAgentGoneResponse Response, Task Durable) MarkAgentGone(MarkAgentGoneRequest request)
    {
        if (string.IsNullOrEmpty(request.AgentId))
        {
            throw MasterErrors.InvalidArgument("agent_id is required");
        }
        if (_agents.IsGone(request.AgentId))
        {
            return (new MarkAgentGoneResponse { AlreadyGone = true }, Task.CompletedTask);
        }
        var agent = OperatorAgent(request.AgentId);
        var id = agent.Id;
        foreach (var offer in _offers.ForAgent(id))
        {
            RescindOffer(offer, $"rescinded: agent {id} was marked gone");
        }
        var now = NowSeconds;
        uint gone = 0;
        foreach (var task in _tasks.RemoveAgent(id))
        {
            if (!_frameworks.TryGet(task.FrameworkId, out var fw))
            {
                continue;
            }
            var state = fw.PartitionAware ? TaskState.TaskGoneByOperator : TaskState.TaskLost;
            var status = task.MasterStatus(state, TaskStatus.Types.Reason.AgentRemoved,
                $"an operator marked agent {id} gone: the task is gone with it; relaunch it elsewhere if still needed", now);
            task.State = state;
            task.SetStatus(status);
            _tasks.AddCompleted(task);
            gone++;
            fw.Subscription?.Outbox.Send(new Event { Update = new Event.Types.Update { Status = status } });
            Emit(new OperatorEvent { TaskUpdated = new OperatorEvent.Types.TaskUpdated { FrameworkId = fw.Id, Status = status, State = state } });
        }
        if (agent.Link is { } link)
        {
            link.Outbox.Send(ShutdownGone(id));
            link.Outbox.Close(GoneRefusal(id));
            agent.Link = null;
        }
        if (agent.InAllocator)
        {
            _allocator.RemoveAgent(id);
            agent.InAllocator = false;
        }
        agent.Status = AgentStatus.AgentGone;
        _agents.MarkGone(id);
        MasterLog.AgentMarkedGone(_logger, id, gone);
        Emit(new OperatorEvent { AgentRemoved = new OperatorEvent.Types.AgentRemoved { AgentId = id } });
        var durable = _registry.Enqueue(RegistryWrite.Put(RegistryRecords.AgentKey(id), new AgentRecord { Info = agent.Info, State = AgentRecord.Types.State.Gone }));
        return (new MarkAgentGoneResponse { TasksGone = gone }, durable);
    }

    /// <summary>Refuses the registration of a gone agent: it is told to kill what it still runs,
    /// then the stream ends with FAILED_PRECONDITION.</summary>
    private static void RefuseGone(AgentLinkSession session, string agentId)
    {
        session.Outbox.Send(ShutdownGone(agentId));
        session.Outbox.Close(GoneRefusal(agentId));
    }

    private static MasterMessage ShutdownGone(string agentId) => new()
    {
        Shutdown = new MasterMessage.Types.Shutdown { Message = $"agent {agentId} was marked gone by an operator and is never admitted again: it kills its tasks and stops; start the agent afresh with an empty work dir" },
    };

    private static Grpc.Core.RpcException GoneRefusal(string agentId) =>
        MasterErrors.FailedPrecondition($"agent {agentId} was marked gone by an operator and is never admitted again; start the agent afresh with an empty work dir");
}
