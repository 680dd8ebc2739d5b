using Sched.V1;
using Scheduler.Master.State;
using Scheduler.Protocol.Tasks;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Tests.Direct;

/// <summary>
/// An agent in memory, speaking AgentLink to a <see cref="DirectMaster"/> the way the AgentLink
/// service relays a real one: messages go through <see cref="Loop.MasterLoop.Receive"/>, answers are
/// read from the session's outbox. It keeps what a real agent keeps: its tasks (reported on
/// re-registration) and, per task, the status updates not yet acknowledged (re-sent on
/// <see cref="ResendAsync"/>). Kills and framework shutdowns are answered with TASK_KILLED.
/// </summary>
public sealed class DirectAgent
{
    private readonly DirectMaster _master;
    private long _heartbeats;

    public DirectAgent(DirectMaster master, IEnumerable<Resource> resources, string hostname = "direct-host")
    {
        _master = master;
        Info = new AgentInfo { Hostname = hostname, Address = hostname + ":5051", Resources = { resources } };
        master.Agents.Add(this);
    }

    /// <summary>When set, the agent stops heartbeating while <see cref="DirectMaster.AdvanceAsync"/> moves time.</summary>
    public bool Silent { get; set; }

    public AgentInfo Info { get; }

    public string Id => Info.Id;

    public AgentLinkSession? Session { get; private set; }

    /// <summary>Every message the master sent on any stream of this agent, in order.</summary>
    public List<MasterMessage> Received { get; } = [];

    /// <summary>Tasks the agent runs, or ended with an update not yet acknowledged (key: framework, task).</summary>
    public Dictionary<(string Framework, string Task), TaskRecord> Tasks { get; } = [];

    /// <summary>Updates sent and not yet acknowledged, oldest first, per task.</summary>
    public Dictionary<(string Framework, string Task), Queue<TaskStatus>> Unacked { get; } = [];

    public List<FrameworkInfo> Frameworks { get; } = [];

    /// <summary>The latest state this agent reported per task (key: framework, task).</summary>
    public Dictionary<(string Framework, string Task), TaskState> LastSent { get; } = [];

    /// <summary>Whether the current stream is open (the master has not closed it).</summary>
    public bool Connected => Session is { Outbox.IsClosed: false };

    /// <summary>Opens a new stream and registers (with its id and tasks once it has them); returns
    /// the registration answer, or null when the master closed the stream instead.</summary>
    public async Task<MasterMessage.Types.Registered?> RegisterAsync()
    {
        Session = _master.Loop.OpenAgentLink();
        var register = new AgentMessage.Types.Register { AgentInfo = Info.Clone() };
        register.Tasks.AddRange(Tasks.Values.Select(t => t.Clone()));
        register.Frameworks.AddRange(Frameworks);
        _master.Loop.Receive(Session, new AgentMessage { Register = register });
        await _master.SettleAsync();
        var registered = Drain().LastOrDefault(m => m.MessageCase == MasterMessage.MessageOneofCase.Registered)?.Registered;
        if (registered is not null)
        {
            Info.Id = registered.AgentId;
        }
        return registered;
    }

    /// <summary>The stream breaks (the master learns it as the AgentLink service reports it).</summary>
    public async Task DisconnectAsync()
    {
        if (Session is { } session)
        {
            _master.Loop.Post(l => l.OnAgentLinkClosed(session));
            await _master.SettleAsync();
        }
    }

    /// <summary>One heartbeat; returns the ping, if the master answered.</summary>
    public MasterMessage.Types.Ping? Heartbeat()
    {
        if (Session is null)
        {
            return null;
        }
        _master.Loop.Receive(Session, new AgentMessage { Heartbeat = new AgentMessage.Types.Heartbeat { Sequence = (ulong)Interlocked.Increment(ref _heartbeats) } });
        return Drain().LastOrDefault(m => m.MessageCase == MasterMessage.MessageOneofCase.Ping)?.Ping;
    }

    /// <summary>Reports a new state of a task (a fresh uuid), as the agent's status update queue does.</summary>
    public async Task<TaskStatus> SendStatusAsync(string frameworkId, string taskId, TaskState state, TaskStatus.Types.Reason reason = TaskStatus.Types.Reason.Unspecified)
    {
        var status = new TaskStatus
        {
            TaskId = taskId,
            AgentId = Id,
            FrameworkId = frameworkId,
            State = state,
            Reason = reason,
            Source = TaskStatus.Types.Source.Agent,
            Uuid = Guid.NewGuid().ToString("D"),
            Timestamp = _master.Time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0,
        };
        LastSent[(frameworkId, taskId)] = state;
        if (Tasks.TryGetValue((frameworkId, taskId), out var task))
        {
            task.State = state;
            task.Status = status;
            task.StatusAcknowledged = false;
        }
        if (!Unacked.TryGetValue((frameworkId, taskId), out var queue))
        {
            Unacked[(frameworkId, taskId)] = queue = new Queue<TaskStatus>();
        }
        queue.Enqueue(status);
        if (queue.Count == 1)
        {
            await SendAsync([status]);
        }
        return status;
    }

    /// <summary>Re-sends the oldest unacknowledged update of every task (the agent's retry).</summary>
    public Task ResendAsync() => SendAsync([.. Unacked.Values.Where(q => q.Count > 0).Select(q => q.Peek())]);

    /// <summary>Handles what the master sent since the last call: records launches, answers
    /// kills and shutdowns, drops acknowledged updates. Returns the messages.</summary>
    public List<MasterMessage> Drain()
    {
        var messages = new List<MasterMessage>();
        while (Session is not null && Session.Outbox.TryRead(out var message))
        {
            messages.Add(message);
            Received.Add(message);
        }
        return messages;
    }

    /// <summary><see cref="Drain"/>, then acts on launches, kills, shutdowns and acknowledgements
    /// (answers go to the master at once); returns the tasks launched.</summary>
    public async Task<List<TaskInfo>> ProcessAsync()
    {
        var launched = new List<TaskInfo>();
        foreach (var message in Drain())
        {
            switch (message.MessageCase)
            {
                case MasterMessage.MessageOneofCase.Launch:
                    if (!Frameworks.Any(f => f.Id == message.Launch.Framework.Id))
                    {
                        Frameworks.Add(message.Launch.Framework);
                    }
                    foreach (var task in message.Launch.Tasks)
                    {
                        var record = new TaskRecord
                        {
                            TaskId = task.TaskId,
                            Name = task.Name,
                            FrameworkId = message.Launch.Framework.Id,
                            AgentId = Id,
                            State = TaskState.TaskStaging,
                            Info = task.Clone(),
                            Role = task.Resources.FirstOrDefault()?.AllocationRole ?? "",
                        };
                        record.Resources.AddRange(task.Resources);
                        Tasks[(record.FrameworkId, task.TaskId)] = record;
                        launched.Add(task);
                    }
                    break;
                case MasterMessage.MessageOneofCase.Kill:
                    if (Tasks.TryGetValue((message.Kill.FrameworkId, message.Kill.TaskId), out var killed) && !TaskLifecycle.IsTerminal(killed.State))
                    {
                        await SendStatusAsync(message.Kill.FrameworkId, message.Kill.TaskId, TaskState.TaskKilled, message.Kill.Reason);
                    }
                    break;
                case MasterMessage.MessageOneofCase.ShutdownFramework:
                    foreach (var task in Tasks.Values.Where(t => t.FrameworkId == message.ShutdownFramework.FrameworkId && !TaskLifecycle.IsTerminal(t.State)).ToList())
                    {
                        await SendStatusAsync(task.FrameworkId, task.TaskId, TaskState.TaskKilled, message.ShutdownFramework.Reason);
                    }
                    break;
                case MasterMessage.MessageOneofCase.Acks:
                    await AcknowledgedAsync(message.Acks);
                    break;
                default:
                    break;
            }
        }
        return launched;
    }

    private async Task AcknowledgedAsync(MasterMessage.Types.StatusAcks acks)
    {
        var next = new List<TaskStatus>();
        foreach (var ack in acks.Acks)
        {
            var key = (ack.FrameworkId, ack.TaskId);
            if (!Unacked.TryGetValue(key, out var queue) || queue.Count == 0 || queue.Peek().Uuid != ack.Uuid)
            {
                continue;
            }
            queue.Dequeue();
            if (queue.Count > 0)
            {
                next.Add(queue.Peek());
                continue;
            }
            Unacked.Remove(key);
            if (Tasks.TryGetValue(key, out var task))
            {
                task.StatusAcknowledged = true;
                if (TaskLifecycle.IsTerminal(task.State))
                {
                    Tasks.Remove(key); // the agent forgets a task once its terminal update is acknowledged
                }
            }
        }
        if (next.Count > 0)
        {
            await SendAsync(next);
        }
    }

    private async Task SendAsync(List<TaskStatus> statuses)
    {
        if (statuses.Count == 0 || Session is null)
        {
            return;
        }
        var updates = new AgentMessage.Types.StatusUpdates();
        updates.Updates.AddRange(statuses.Select(s => new AgentMessage.Types.StatusUpdate { FrameworkId = s.FrameworkId, Status = s }));
        _master.Loop.Receive(Session, new AgentMessage { StatusUpdates = updates });
        await _master.SettleAsync();
    }
}
