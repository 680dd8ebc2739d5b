using Google.Protobuf;
using Sched.V1;

namespace Scheduler.Master.Loop;

/// <summary>
/// The snapshot that opens an operator event stream, within the message size bound. The whole
/// state of a large cluster (tens of thousands of agents and their attributes, hundreds of
/// thousands of tasks) is far beyond the gRPC message limit; sent as one event it would fail on
/// every subscription. So <c>subscribed</c> carries the master, the roles and as many
/// frameworks, agents and tasks as fit under the bound, and the rest follow at once as
/// <c>framework_added</c>, <c>agent_added</c> and <c>task_added</c> events (in that order, so
/// each refers only to what came before). Completed tasks are history: those that do not fit
/// (the oldest) are left out of the stream; <c>GetTasks</c> lists them.
/// </summary>
public sealed partial class MasterLoop
{
    private List<OperatorEvent> SnapshotEvents(GetStateResponse state)
    {
        var bound = EventSizeBound;
        if (state.CalculateSize() <= bound)
        {
            return [new OperatorEvent { Subscribed = state }];
        }
        var head = new GetStateResponse { Master = state.Master };
        head.Roles.AddRange(state.Roles);
        var size = head.CalculateSize();
        var rest = new List<OperatorEvent>();
        foreach (var framework in state.Frameworks)
        {
            if (Fits(framework))
            {
                head.Frameworks.Add(framework);
            }
            else
            {
                rest.Add(new OperatorEvent { FrameworkAdded = new OperatorEvent.Types.FrameworkAdded { Framework = framework } });
            }
        }
        foreach (var agent in state.Agents)
        {
            if (Fits(agent))
            {
                head.Agents.Add(agent);
            }
            else
            {
                rest.Add(new OperatorEvent { AgentAdded = new OperatorEvent.Types.AgentAdded { Agent = agent } });
            }
        }
        foreach (var task in state.Tasks)
        {
            if (Fits(task))
            {
                head.Tasks.Add(task);
            }
            else
            {
                rest.Add(new OperatorEvent { TaskAdded = new OperatorEvent.Types.TaskAdded { Task = task } });
            }
        }
        var completed = new List<TaskRecord>();
        for (var i = state.CompletedTasks.Count - 1; i >= 0 && Fits(state.CompletedTasks[i]); i--)
        {
            completed.Add(state.CompletedTasks[i]);
        }
        completed.Reverse();
        head.CompletedTasks.AddRange(completed);
        rest.Insert(0, new OperatorEvent { Subscribed = head });
        return rest;

        bool Fits(IMessage item)
        {
            var framed = 1 + CodedOutputStream.ComputeLengthSize(item.CalculateSize()) + item.CalculateSize();
            if (size + framed > bound)
            {
                return false;
            }
            size += framed;
            return true;
        }
    }
}
