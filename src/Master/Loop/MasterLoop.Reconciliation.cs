using Sched.V1;
using Scheduler.Master.State;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Loop;

/// <summary>
/// Task reconciliation (the answers are documented on <c>ReconcileRequest</c> in
/// scheduler.proto). The rule that shapes it: never answer TASK_UNKNOWN (or TASK_LOST) for a task
/// that may still run. A framework that trusts such an answer launches the task again, and when
/// the agent comes back the task runs twice. So a task on an agent that may still re-register
/// after a master failover gets no answer yet (it comes once the agent is back, or is marked
/// unreachable); a task on an unreachable agent is TASK_UNREACHABLE.
/// </summary>
public sealed partial class MasterLoop
{
    public ReconcileResponse Reconcile(ReconcileRequest request)
    {
        var fw = Caller(request.FrameworkId, request.StreamId);
        var now = NowSeconds;
        var answers = new List<TaskStatus>();
        if (request.Tasks.Count == 0)
        {
            // Implicit: every live task, and every ended task whose terminal update the framework
            // has not acknowledged yet (the agent re-sends that update until it is).
            answers.AddRange(_tasks.LiveOf(fw.Id).Select(t => Reconciled(fw, t, now)));
            answers.AddRange(_tasks.CompletedOf(fw.Id).Where(t => t.AwaitsAcknowledgement).Select(t => Reconciled(fw, t, now)));
        }
        else
        {
            // Whether some agent may hold tasks the master does not know: counted once per call,
            // not once per query (a framework may reconcile thousands of tasks in one call).
            var someAgentUnheard = _agents.SomeAgentUnheard();
            foreach (var query in request.Tasks)
            {
                if (ReconcileOne(fw, query, someAgentUnheard, now) is { } answer)
                {
                    answers.Add(answer);
                }
            }
        }
        foreach (var status in answers)
        {
            fw.Subscription?.Outbox.Send(new Event { Update = new Event.Types.Update { Status = status } });
        }
        return new ReconcileResponse();
    }

    /// <summary>The answer to one explicit query; null when the master cannot tell yet.</summary>
    private TaskStatus? ReconcileOne(FrameworkEntry fw, ReconcileRequest.Types.Task query, bool someAgentUnheard, double now)
    {
        if ((_tasks.Live(fw.Id, query.TaskId) ?? _tasks.LatestCompleted(fw.Id, query.TaskId)) is { } task)
        {
            return Reconciled(fw, task, now);
        }
        if (query.AgentId.Length == 0)
        {
            // Without an agent the task could be on any agent the master has not heard from.
            if (someAgentUnheard)
            {
                return null;
            }
            return Answer(TaskState.TaskUnknown, $"task '{query.TaskId}' is not known to this master and every agent it knows is registered");
        }
        var agentId = query.AgentId;
        if (_agents.IsExpected(agentId))
        {
            return null; // answered when the agent re-registers with its tasks (or is marked unreachable)
        }
        if (_agents.IsGone(agentId))
        {
            return Answer(fw.PartitionAware ? TaskState.TaskGone : TaskState.TaskLost,
                $"agent '{agentId}' is gone (removed from the cluster): task '{query.TaskId}' is not running; relaunch it if still needed");
        }
        if (_agents.TryGet(agentId, out var agent))
        {
            if (agent.Status == AgentStatus.AgentUnreachable)
            {
                return Answer(fw.PartitionAware ? TaskState.TaskUnreachable : TaskState.TaskLost,
                    $"agent '{agentId}' is unreachable: task '{query.TaskId}' may still be running and will be reported if the agent comes back");
            }
            return Answer(TaskState.TaskUnknown, $"agent '{agentId}' is registered and does not have task '{query.TaskId}'");
        }
        return Answer(TaskState.TaskUnknown, $"agent '{agentId}' is not known to this master or its registry (never registered, or removed long ago); task '{query.TaskId}' is unknown");

        TaskStatus Answer(TaskState state, string message) =>
            TaskEntry.MasterStatus(query.TaskId, query.AgentId, fw.Id, state, TaskStatus.Types.Reason.Reconciliation, message, now);
    }

    /// <summary>The reconciliation answer for a task the master tracks: its latest state, without
    /// a uuid (nothing to acknowledge). A task on an unreachable agent reads TASK_LOST to a
    /// framework that is not partition-aware, as its update did.</summary>
    private static TaskStatus Reconciled(FrameworkEntry fw, TaskEntry task, double now)
    {
        var state = task.State == TaskState.TaskUnreachable && !fw.PartitionAware ? TaskState.TaskLost : task.State;
        var status = task.Status() ?? task.MasterStatus(state, TaskStatus.Types.Reason.Reconciliation, "", now);
        status.State = state;
        status.Reason = TaskStatus.Types.Reason.Reconciliation;
        status.Source = TaskStatus.Types.Source.Master;
        status.Uuid = "";
        status.Timestamp = now;
        return status;
    }
}
