using Sched.V1;
using Scheduler.Protocol.Tasks;
using Scheduler.Master.State;
using Scheduler.Master.Telemetry;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Loop;

/// <summary>Status updates, kills, acknowledgements, reconciliation.</summary>
public sealed partial class MasterLoop
{
    private void OnStatusUpdate(AgentEntry agent, AgentMessage.Types.StatusUpdate update)
    {
        var status = update.Status;
        if (status is null || status.TaskId.Length == 0)
        {
            return;
        }
        var fwId = update.FrameworkId.Length > 0 ? update.FrameworkId : status.FrameworkId;
        status.FrameworkId = fwId;
        var fw = _frameworks.Find(fwId);
        var live = fw is null ? null : _tasks.Live(fwId, status.TaskId);
        var done = fw is null || live is not null ? null : _tasks.LatestCompleted(fwId, status.TaskId);
        // An agent speaks only for the tasks it runs: an update naming another agent, or for a task
        // the master knows on another agent, is dropped (and acknowledged, so the sender's queue
        // drains) instead of changing the task or reaching its framework.
        if (ForeignUpdate(agent, status, live ?? done) is { } foreign)
        {
            MasterLog.ForeignStatusUpdate(_logger, agent.Id, status.TaskId, fwId, foreign);
            AcknowledgeFor(agent, fwId, status);
            return;
        }
        status.AgentId = agent.Id;
        _metrics.StatusUpdate(status.State);
        if (fw is null)
        {
            // Nobody will acknowledge it: the framework is gone. Acknowledge for it so the agent's
            // queue drains.
            AcknowledgeFor(agent, fwId, status);
            return;
        }
        if (live is not null)
        {
            live.State = status.State;
            live.SetStatus(status);
            if (TaskLifecycle.IsTerminal(status.State))
            {
                _tasks.Complete(live);
                Recover(fwId, live.AgentId, live.Resources, null);
            }
        }
        else if (done is not null && done.StatusUuidIs(status.Uuid))
        {
            // A re-sent terminal update: forward again (at-least-once) without changing state.
            done.StatusAcknowledged = false;
        }
        fw.Subscription?.Outbox.Send(new Event { Update = new Event.Types.Update { Status = status } });
        if (_operatorSubscribers.Count > 0)
        {
            Emit(new OperatorEvent { TaskUpdated = new OperatorEvent.Types.TaskUpdated { FrameworkId = fwId, Status = status, State = status.State } });
        }
    }

    /// <summary>Why <paramref name="agent"/> may not report <paramref name="status"/> about
    /// <paramref name="known"/> (the task as the master has it, live or completed), or null.</summary>
    private static string? ForeignUpdate(AgentEntry agent, TaskStatus status, TaskEntry? known)
    {
        if (status.AgentId.Length > 0 && status.AgentId != agent.Id)
        {
            return $"it names agent {status.AgentId}";
        }
        return known is not null && known.AgentId != agent.Id ? $"the task runs on agent {known.AgentId}" : null;
    }

    private static void AcknowledgeFor(AgentEntry agent, string frameworkId, TaskStatus status)
    {
        if (status.Uuid.Length > 0)
        {
            var acks = new MasterMessage.Types.StatusAcks();
            acks.Acks.Add(new MasterMessage.Types.StatusAck { FrameworkId = frameworkId, TaskId = status.TaskId, Uuid = status.Uuid });
            agent.Link?.Outbox.Send(new MasterMessage { Acks = acks });
        }
    }

    public KillResponse Kill(KillRequest request)
    {
        var fw = Caller(request.FrameworkId, request.StreamId);
        if (string.IsNullOrEmpty(request.TaskId))
        {
            throw MasterErrors.InvalidArgument("task_id is required");
        }
        var now = NowSeconds;
        if (_tasks.TryGetLive(fw.Id, request.TaskId, out var task))
        {
            SendToAgent(task.AgentId, new MasterMessage
            {
                Kill = new MasterMessage.Types.KillTask
                {
                    FrameworkId = fw.Id,
                    TaskId = task.TaskId,
                    KillPolicy = request.KillPolicy ?? task.KillPolicy,
                    Reason = TaskStatus.Types.Reason.KilledByFramework,
                },
            });
            return new KillResponse();
        }
        TaskStatus status;
        if (_tasks.LatestCompleted(fw.Id, request.TaskId) is { } done && done.Status() is { } last)
        {
            status = last;
            status.Source = TaskStatus.Types.Source.Master;
            status.Uuid = "";
            status.Message = $"task '{request.TaskId}' already ended ({done.State}); nothing to kill";
        }
        else
        {
            // The reconciliation rule: never answer TASK_UNKNOWN (or TASK_LOST) for a task that may
            // still run on an agent the master has not heard from since a failover; such a kill is
            // answered when the agent is back (the framework kills again after reconciling).
            var someAgentUnheard = _agents.SomeAgentUnheard();
            var reconciled = ReconcileOne(fw, new ReconcileRequest.Types.Task { TaskId = request.TaskId, AgentId = request.AgentId }, someAgentUnheard, now);
            if (reconciled is null)
            {
                return new KillResponse();
            }
            status = reconciled.State != TaskState.TaskUnknown ? reconciled : TaskEntry.MasterStatus(request.TaskId, request.AgentId, fw.Id,
                fw.PartitionAware ? TaskState.TaskUnknown : TaskState.TaskLost, TaskStatus.Types.Reason.TaskUnknown,
                $"task '{request.TaskId}' is not known to the master; it was never launched or its agent is gone", now);
        }
        fw.Subscription?.Outbox.Send(new Event { Update = new Event.Types.Update { Status = status } });
        return new KillResponse();
    }

    public AcknowledgeResponse Acknowledge(AcknowledgeRequest request)
    {
        var fw = Caller(request.FrameworkId, request.StreamId);
        var items = new List<AcknowledgeRequest.Types.Item>();
        if (request.TaskId.Length > 0 || request.Uuid.Length > 0 || request.AgentId.Length > 0)
        {
            items.Add(new AcknowledgeRequest.Types.Item { AgentId = request.AgentId, TaskId = request.TaskId, Uuid = request.Uuid });
        }
        items.AddRange(request.Items);
        if (items.Count == 0)
        {
            throw MasterErrors.InvalidArgument("nothing to acknowledge: set agent_id, task_id and uuid (or items)");
        }
        var tasks = new List<TaskEntry?>();
        foreach (var item in items)
        {
            if (item.Uuid.Length == 0)
            {
                throw MasterErrors.InvalidArgument($"uuid is empty for task '{item.TaskId}': acknowledge only updates with a uuid (master-generated ones need no acknowledgement)");
            }
            if (!_agents.Contains(item.AgentId))
            {
                throw MasterErrors.NotFound($"agent '{item.AgentId}' is not known; use the agent_id of the status update");
            }
            // A task the master no longer tracks (a completed task pruned from its history) may
            // still have that update queued on the agent: pass the acknowledgement on regardless,
            // the agent drops the update if it holds it.
            tasks.Add(_tasks.Live(fw.Id, item.TaskId) ?? _tasks.LatestCompleted(fw.Id, item.TaskId));
        }
        foreach (var group in items.Select((item, i) => (item, task: tasks[i])).GroupBy(p => p.item.AgentId, StringComparer.Ordinal))
        {
            var acks = new MasterMessage.Types.StatusAcks();
            foreach (var (item, task) in group)
            {
                acks.Acks.Add(new MasterMessage.Types.StatusAck { FrameworkId = fw.Id, TaskId = item.TaskId, Uuid = item.Uuid });
                if (task is not null && task.StatusUuidIs(item.Uuid))
                {
                    task.StatusAcknowledged = true;
                }
            }
            SendToAgent(group.Key, new MasterMessage { Acks = acks });
        }
        return new AcknowledgeResponse();
    }
}
