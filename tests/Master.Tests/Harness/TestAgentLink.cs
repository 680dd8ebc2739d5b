using Grpc.Net.Client;
using Google.Protobuf;
using Sched.V1;
using Scheduler.Protocol;
using Grpc.Core;
using TaskStatus = Sched.V1.TaskStatus;
using Scheduler.Channels;
using Scheduler.LinkClient;

namespace Scheduler.Master.Tests.Harness;

/// <summary>
/// A test double of an agent: speaks AgentLink over a real stream, registers with the given
/// resources, heartbeats, and answers launches by sending STARTING → RUNNING → FINISHED (or
/// what the test scripts). Unacknowledged updates are re-sent every <see cref="ResendInterval"/>,
/// like the real agent, until the master forwards an ack with the same uuid.
/// </summary>
public sealed class TestAgentLink : IAsyncDisposable
{
    private readonly GrpcChannel _channel;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    // Per task, the updates not yet acknowledged; only the head is (re-)sent, as the real agent does.
    private readonly Dictionary<string, Queue<TaskStatus>> _queues = new();
    private readonly Lock _gate = new();
    private AsyncDuplexStreamingCall<AgentMessage, MasterMessage>? _call;
    private Task _pump = Task.CompletedTask;
    private Task _heartbeats = Task.CompletedTask;
    private Task _resender = Task.CompletedTask;
    private CancellationTokenSource _linkStop = new();

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

    /// <summary>Everything the master sent, in order.</summary>
    public EventLog<MasterMessage> Messages { get; private set; } = new();

    /// <summary>Live tasks, for re-registration.</summary>
    public Dictionary<string, TaskRecord> Tasks { get; } = [];

    public List<FrameworkInfo> Frameworks { get; } = [];

    /// <summary>Answer launches automatically with STARTING, RUNNING and (unless false) FINISHED.</summary>
    public bool AutoRun { get; set; } = true;

    public bool AutoFinish { get; set; } = true;

    public bool SendHeartbeats { get; set; } = true;

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

    /// <summary>Opens a stream and registers (re-registers with the known id and tasks); returns
    /// the master's first answer.</summary>
    public async Task<MasterMessage.Types.Registered> ConnectAsync()
    {
        await _linkStop.CancelAsync();
        _call?.Dispose();
        _linkStop = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        Messages = new EventLog<MasterMessage>();
        _call = _channel.AsyncDuplexStreamingCall(AgentLinkMethods.Connect, new CallOptions(cancellationToken: _linkStop.Token));
        var register = new AgentMessage.Types.Register { AgentInfo = Info };
        register.Tasks.AddRange(Tasks.Values);
        register.Frameworks.AddRange(Frameworks);
        var messages = Messages;
        var call = _call;
        var token = _linkStop.Token;
        // The agent's own handshake: a refusal throws the master's status.
        var registered = await LinkLoop.RegisterAsync(call, new AgentMessage { Register = register }, "the master", TimeSpan.FromSeconds(20), TimeProvider.System, token);
        messages.Add(registered);
        _pump = Task.Run(() => PumpAsync(call, messages, token));
        if (registered.MessageCase != MasterMessage.MessageOneofCase.Registered)
        {
            throw new InvalidOperationException($"the master answered the registration with {registered.MessageCase}");
        }
        Info.Id = registered.Registered.AgentId;
        Registered = registered.Registered;
        _heartbeats = Task.Run(() => HeartbeatAsync(registered.Registered.HeartbeatIntervalSeconds, token));
        _resender = Task.Run(() => ResendAsync(token));
        return registered.Registered;
    }

    /// <summary>Stops heartbeats and drops the stream (as a crashed agent or broken network would).</summary>
    public async Task DisconnectAsync()
    {
        await _linkStop.CancelAsync();
        _call?.Dispose();
        try
        {
            await Task.WhenAll(_pump, _heartbeats, _resender);
        }
        catch (Exception)
        {
        }
    }

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

    public Task SendUpdatesAsync(IEnumerable<TaskStatus> statuses)
    {
        var updates = new AgentMessage.Types.StatusUpdates();
        updates.Updates.AddRange(statuses.Select(s => new AgentMessage.Types.StatusUpdate { FrameworkId = s.FrameworkId, Status = s }));
        return WriteAsync(new AgentMessage { StatusUpdates = updates });
    }

    public async Task WriteAsync(AgentMessage message)
    {
        await _writeGate.WaitAsync();
        try
        {
            await _call!.RequestStream.WriteAsync(message);
        }
        finally
        {
            _writeGate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _call?.Dispose();
        try
        {
            await Task.WhenAll(_pump, _heartbeats, _resender);
        }
        catch (Exception)
        {
        }
    }

    private async Task PumpAsync(AsyncDuplexStreamingCall<AgentMessage, MasterMessage> call, EventLog<MasterMessage> messages, CancellationToken token)
    {
        try
        {
            while (await call.ResponseStream.MoveNext(token))
            {
                var message = call.ResponseStream.Current;
                messages.Add(message);
                await OnMessageAsync(message);
            }
            messages.End(null);
        }
        catch (Exception e)
        {
            messages.End(e);
        }
    }

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

    private async Task HeartbeatAsync(double intervalSeconds, CancellationToken token)
    {
        ulong sequence = 0;
        try
        {
            while (!token.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromSeconds(intervalSeconds), token);
                if (SendHeartbeats)
                {
                    await WriteAsync(new AgentMessage { Heartbeat = new AgentMessage.Types.Heartbeat { Sequence = ++sequence } });
                }
            }
        }
        catch (Exception)
        {
        }
    }

    private async Task ResendAsync(CancellationToken token)
    {
        try
        {
            while (!token.IsCancellationRequested)
            {
                await Task.Delay(ResendInterval, token);
                List<TaskStatus> pending;
                lock (_gate)
                {
                    pending = [.. _queues.Values.Where(q => q.Count > 0).Select(q => q.Peek())];
                }
                if (pending.Count > 0)
                {
                    await SendUpdatesAsync(pending);
                }
            }
        }
        catch (Exception)
        {
        }
    }
}
