using Grpc.Net.Client;
using Sched.V1;
using Scheduler.Protocol;
using TaskStatus = Sched.V1.TaskStatus;
using Scheduler.LinkClient;

namespace Scheduler.Master.Tests.Harness;

/// <summary>
/// A test double of an agent: speaks AgentLink over a real stream in the agents' own
/// <see cref="LinkSession"/> (handshake, heartbeats, writer, reader), registers with the given
/// resources, and answers launches by sending STARTING → RUNNING → FINISHED (or what the test
/// scripts). Unacknowledged updates are re-sent every <see cref="ResendInterval"/>, like the real
/// agent, until the master forwards an ack with the same uuid. Unlike an agent it keeps a stream
/// whose master went silent (the test decides when to let go), and it connects once per
/// <see cref="ConnectAsync"/>, without a loop.
/// </summary>
public sealed class TestAgentLink : IAsyncDisposable, ILinkParticipant
{
    private readonly GrpcChannel _channel;
    private readonly CancellationTokenSource _stop = new();
    // Per task, the updates not yet acknowledged; only the head is (re-)sent, as the real agent does.
    private readonly Dictionary<string, Queue<TaskStatus>> _queues = new();
    private readonly Lock _gate = new();
    private LinkSession? _session;

    public TestAgentLink(GrpcChannel channel, IEnumerable<Resource> resources, string hostname = "test-host")
    {
        _channel = channel;
        Info = new AgentInfo { Hostname = hostname, Address = hostname + ":5051" };
        Info.Resources.AddRange(resources);
    }

    public AgentInfo Info { get; }

    public string AgentId => Info.Id;

    /// <summary>The master's answer to the latest registration.</summary>
    public MasterMessage.Types.Registered? Registered { get; private set; }

    /// <summary>Everything the master sent on the latest stream, in order.</summary>
    public EventLog<MasterMessage> Messages { get; private set; } = new();

    /// <summary>Live tasks, for re-registration.</summary>
    public Dictionary<string, TaskRecord> Tasks { get; } = [];

    public List<FrameworkInfo> Frameworks { get; } = [];

    /// <summary>Answer launches automatically with STARTING, RUNNING and (unless false) FINISHED.</summary>
    public bool AutoRun { get; set; } = true;

    public bool AutoFinish { get; set; } = true;

    public TimeSpan ResendInterval { get; set; } = TimeSpan.FromMilliseconds(300);

    public int UnackedCount
    {
        get
        {
            lock (_gate)
            {
                return _queues.Values.Sum(q => q.Count);
            }
        }
    }

    /// <summary>Ends the current stream, opens a new one and registers (re-registers with the known
    /// id and tasks); returns the master's answer. A refusal throws the master's status, as does a
    /// <c>shutdown</c> (FAILED_PRECONDITION).</summary>
    public async Task<MasterMessage.Types.Registered> ConnectAsync()
    {
        await DisconnectAsync();
        Messages = new EventLog<MasterMessage>();
        var session = await LinkSession.OpenAsync(_channel, "the master", this,
            new LinkSessionOptions { RegistrationTimeout = TimeSpan.FromSeconds(20), LeaveSilentMaster = false }, _stop.Token);
        return session.Registered;
    }

    /// <summary>Stops heartbeats and drops the stream (as a crashed agent or broken network would).</summary>
    public Task DisconnectAsync() => _session?.StopAsync() ?? Task.CompletedTask;

    /// <summary>Sends one status update for a task (a fresh uuid), to be re-sent until acknowledged.</summary>
    public async Task<TaskStatus> SendStatusAsync(string frameworkId, string taskId, TaskState state, TaskStatus.Types.Reason reason = TaskStatus.Types.Reason.Unspecified, bool track = true)
    {
        var status = new TaskStatus
        {
            TaskId = taskId,
            AgentId = AgentId,
            FrameworkId = frameworkId,
            State = state,
            Reason = reason,
            Source = TaskStatus.Types.Source.Agent,
            Uuid = Guid.NewGuid().ToString(),
            Timestamp = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0,
        };
        if (Tasks.TryGetValue(taskId, out var task))
        {
            task.State = state;
            task.Status = status;
            if (Scheduler.Protocol.Tasks.TaskLifecycle.IsTerminal(state))
            {
                Tasks.Remove(taskId);
            }
        }
        var sendNow = true;
        if (track)
        {
            lock (_gate)
            {
                if (!_queues.TryGetValue(taskId, out var queue))
                {
                    _queues[taskId] = queue = new Queue<TaskStatus>();
                }
                queue.Enqueue(status);
                sendNow = queue.Count == 1;
            }
        }
        if (sendNow)
        {
            await SendUpdatesAsync([status]);
        }
        return status;
    }

    public Task SendUpdatesAsync(IEnumerable<TaskStatus> statuses) => WriteAsync(Updates(statuses));

    /// <summary>Sends <paramref name="message"/> on the current stream; completes once it is written.</summary>
    public Task WriteAsync(AgentMessage message) =>
        (_session ?? throw new InvalidOperationException("the test agent is not connected; call ConnectAsync first")).SendAsync(message);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await DisconnectAsync();
    }

    AgentMessage.Types.Register ILinkParticipant.BuildRegister()
    {
        var register = new AgentMessage.Types.Register { AgentInfo = Info };
        register.Tasks.AddRange(Tasks.Values);
        register.Frameworks.AddRange(Frameworks);
        return register;
    }

    void ILinkParticipant.OnRegistered(MasterMessage.Types.Registered registered, LinkSession session)
    {
        // Set before the session's reader starts: the replies to what it reads go on this stream.
        _session = session;
        Messages.Add(new MasterMessage { Registered = registered });
        Info.Id = registered.AgentId;
        Registered = registered;
    }

    Task ILinkParticipant.OnShutdownAsync(MasterMessage.Types.Shutdown shutdown)
    {
        Messages.Add(new MasterMessage { Shutdown = shutdown });
        return Task.CompletedTask;
    }

    void ILinkParticipant.OnEnded(LinkSession session, Exception? reason) => Messages.End(reason);

    async ValueTask ILinkParticipant.HandleAsync(MasterMessage message, LinkSession session, CancellationToken cancellationToken)
    {
        Messages.Add(message);
        await OnMessageAsync(message);
    }

    /// <summary>Re-sends the head of every task's unacknowledged updates every <see cref="ResendInterval"/>.</summary>
    Task? ILinkParticipant.RunAlongsideAsync(LinkSession session, CancellationToken cancellationToken) => ResendAsync(session, cancellationToken);

    private async Task OnMessageAsync(MasterMessage message)
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
                        AgentId = AgentId,
                        State = TaskState.TaskStaging,
                        Info = task,
                        Role = task.Resources.FirstOrDefault()?.AllocationRole ?? "",
                    };
                    record.Resources.AddRange(task.Resources);
                    Tasks[task.TaskId] = record;
                    if (AutoRun)
                    {
                        await SendStatusAsync(record.FrameworkId, task.TaskId, TaskState.TaskStarting);
                        await SendStatusAsync(record.FrameworkId, task.TaskId, TaskState.TaskRunning);
                        if (AutoFinish)
                        {
                            await SendStatusAsync(record.FrameworkId, task.TaskId, TaskState.TaskFinished);
                        }
                    }
                }
                break;
            case MasterMessage.MessageOneofCase.Acks:
                var next = new List<TaskStatus>();
                lock (_gate)
                {
                    foreach (var ack in message.Acks.Acks)
                    {
                        if (_queues.TryGetValue(ack.TaskId, out var queue) && queue.Count > 0 && queue.Peek().Uuid == ack.Uuid)
                        {
                            queue.Dequeue();
                            if (queue.Count > 0)
                            {
                                next.Add(queue.Peek());
                            }
                            else
                            {
                                _queues.Remove(ack.TaskId);
                            }
                        }
                    }
                }
                if (next.Count > 0)
                {
                    await SendUpdatesAsync(next);
                }
                break;
            case MasterMessage.MessageOneofCase.Kill:
                if (Tasks.ContainsKey(message.Kill.TaskId))
                {
                    await SendStatusAsync(message.Kill.FrameworkId, message.Kill.TaskId, TaskState.TaskKilled, message.Kill.Reason);
                }
                break;
            case MasterMessage.MessageOneofCase.ShutdownFramework:
                foreach (var task in Tasks.Values.Where(t => t.FrameworkId == message.ShutdownFramework.FrameworkId).ToList())
                {
                    await SendStatusAsync(task.FrameworkId, task.TaskId, TaskState.TaskKilled, message.ShutdownFramework.Reason);
                }
                break;
            default:
                break;
        }
    }

    private async Task ResendAsync(LinkSession session, CancellationToken token)
    {
        while (true)
        {
            await Task.Delay(ResendInterval, token);
            List<TaskStatus> pending;
            lock (_gate)
            {
                pending = [.. _queues.Values.Where(q => q.Count > 0).Select(q => q.Peek())];
            }
            if (pending.Count > 0)
            {
                session.Post(Updates(pending));
            }
        }
    }

    private static AgentMessage Updates(IEnumerable<TaskStatus> statuses)
    {
        var updates = new AgentMessage.Types.StatusUpdates();
        updates.Updates.AddRange(statuses.Select(s => new AgentMessage.Types.StatusUpdate { FrameworkId = s.FrameworkId, Status = s }));
        return new AgentMessage { StatusUpdates = updates };
    }
}
