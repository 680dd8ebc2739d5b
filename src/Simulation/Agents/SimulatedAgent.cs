using Grpc.Net.Client;
using System.Globalization;
using Google.Protobuf.Collections;
using Sched.V1;
using Scheduler.Protocol;
using Grpc.Core;
using Scheduler.Channels;
using Scheduler.LinkClient;

namespace Scheduler.Simulation;

/// <summary>
/// One simulated agent: a real <c>AgentLink.Connect</c> stream with the mock executor's
/// behaviour. Status updates wait in an in-memory per-task queue (head of line, re-sent until
/// acknowledged); nothing is checkpointed, so a restarted simulation starts afresh.
/// </summary>
internal sealed class SimulatedAgent(SimulatedAgentHost host, int index, GrpcChannel channel)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, SimTask> _tasks = new(StringComparer.Ordinal);
    private readonly List<AgentMessage.Types.StatusUpdate> _outbox = [];
    private readonly Dictionary<string, FrameworkInfo> _frameworks = new(StringComparer.Ordinal);
    private AsyncDuplexStreamingCall<AgentMessage, MasterMessage>? _call;
    private CancellationTokenSource? _session;
    private int _generation;
    private bool _pumping;
    private bool _heartbeatDue;
    private ulong _heartbeatSequence;
    private long _lastMessage;
    private TimeSpan _heartbeatInterval = TimeSpan.FromSeconds(1);
    private TimeSpan _scheduledInterval = TimeSpan.FromSeconds(1);

    public string AgentId { get; private set; } = "";

    public string Hostname { get; } = host.Options.HostnamePrefix + index.ToString(CultureInfo.InvariantCulture);

    public int TaskCount
    {
        get
        {
            lock (_gate)
            {
                return _tasks.Count;
            }
        }
    }

    /// <summary>Connects, and reconnects with jittered backoff, until cancelled or refused.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var loop = new LinkLoop(new MasterSelection([.. host.Options.Masters], TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(10), new Random(Hostname.GetHashCode(StringComparison.Ordinal))), host.Options.TimeProvider);
        var refusal = await loop.RunAsync(
            SessionAsync,
            redirected: null,
            lost: (_, _) => Interlocked.Increment(ref host.Counters.Reconnects),
            cancellationToken).ConfigureAwait(false);
        if (refusal is not null)
        {
            host.Refused($"{Hostname}: master {refusal.Address} refused the agent: {refusal.Detail}");
        }
    }

    private async Task SessionAsync(string address, Action registered, CancellationToken cancellationToken)
    {
        using var session = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var call = (address == channel.Target ? channel : host.ChannelFor(address))
            .AsyncDuplexStreamingCall(AgentLinkMethods.Connect, new CallOptions(cancellationToken: session.Token));
        AgentMessage register;
        lock (_gate)
        {
            register = new AgentMessage { Register = BuildRegister() };
        }
        var first = await LinkLoop.RegisterAsync(call, register, address, timeout: null, host.Options.TimeProvider, session.Token).ConfigureAwait(false);
        if (first.MessageCase == MasterMessage.MessageOneofCase.Shutdown)
        {
            // Marked gone: a simulated agent has nothing to kill; it stops, as a refusal.
            throw new RpcException(new Status(StatusCode.FailedPrecondition, first.Shutdown.Message));
        }
        int generation;
        lock (_gate)
        {
            AgentId = first.Registered.AgentId;
            _heartbeatInterval = _scheduledInterval = TimeSpan.FromSeconds(first.Registered.HeartbeatIntervalSeconds > 0 ? first.Registered.HeartbeatIntervalSeconds : 1);
            _call = call;
            _session = session;
            generation = ++_generation;
            _lastMessage = host.Options.TimeProvider.GetTimestamp();
            _outbox.Clear();
            foreach (var (key, task) in _tasks)
            {
                if (task.Pending.Count > 0)
                {
                    SendHeadLocked(key, task);
                }
            }
            EnsurePumpLocked();
        }
        host.Registered(this);
        registered();
        // Stagger heartbeats across agents so they do not all arrive in the same tick.
        host.Wheel.Schedule(_heartbeatInterval * Random.Shared.NextDouble(), this, SimTimerKind.Heartbeat, "", generation.ToString(CultureInfo.InvariantCulture));
        try
        {
            while (await call.ResponseStream.MoveNext(session.Token).ConfigureAwait(false))
            {
                Volatile.Write(ref _lastMessage, host.Options.TimeProvider.GetTimestamp());
                Handle(call.ResponseStream.Current);
            }
            throw new RpcException(call.GetStatus(), call.GetTrailers());
        }
        finally
        {
            lock (_gate)
            {
                if (_generation == generation)
                {
                    _call = null;
                    _session = null;
                    _outbox.Clear();
                }
            }
        }
    }

    private AgentMessage.Types.Register BuildRegister()
    {
        var info = new AgentInfo
        {
            Id = AgentId,
            Hostname = Hostname,
            Version = "simulated",
            BootId = host.BootId,
        };
        info.Resources.AddRange(host.Resources);
        var register = new AgentMessage.Types.Register { AgentInfo = info };
        foreach (var task in _tasks.Values)
        {
            register.Tasks.Add(new TaskRecord
            {
                TaskId = task.Info.TaskId,
                Name = task.Info.Name,
                FrameworkId = task.FrameworkId,
                AgentId = AgentId,
                State = task.State,
                Resources = { task.Info.Resources },
                Status = task.Latest,
                ContainerType = ContainerInfo.Types.Type.Mock,
                Info = task.Info,
                StatusAcknowledged = task.Pending.Count == 0,
            });
        }
        foreach (var fw in _tasks.Values.Select(t => t.FrameworkId).Distinct())
        {
            if (_frameworks.TryGetValue(fw, out var f))
            {
                register.Frameworks.Add(f);
            }
        }
        return register;
    }

    private void Handle(MasterMessage m)
    {
        lock (_gate)
        {
            switch (m.MessageCase)
            {
                case MasterMessage.MessageOneofCase.Ping:
                    if (m.Ping.HeartbeatIntervalSeconds > 0)
                    {
                        _heartbeatInterval = TimeSpan.FromSeconds(m.Ping.HeartbeatIntervalSeconds); // the master's current interval
                    }
                    break;
                case MasterMessage.MessageOneofCase.Launch:
                    LaunchLocked(m.Launch.Framework, m.Launch.Tasks);
                    break;
                case MasterMessage.MessageOneofCase.Kill:
                    KillLocked(m.Kill.FrameworkId, m.Kill.TaskId, m.Kill.KillPolicy,
                        m.Kill.Reason == TaskStatus.Types.Reason.Unspecified ? TaskStatus.Types.Reason.KilledByFramework : m.Kill.Reason);
                    break;
                case MasterMessage.MessageOneofCase.Acks:
                    foreach (var ack in m.Acks.Acks)
                    {
                        AckLocked(ack.FrameworkId, ack.TaskId, ack.Uuid);
                    }
                    break;
                case MasterMessage.MessageOneofCase.ShutdownFramework:
                    var fw = m.ShutdownFramework.FrameworkId;
                    var reason = m.ShutdownFramework.Reason == TaskStatus.Types.Reason.Unspecified ? TaskStatus.Types.Reason.FrameworkRemoved : m.ShutdownFramework.Reason;
                    foreach (var task in _tasks.Values.Where(t => t.FrameworkId == fw).ToList())
                    {
                        KillLocked(fw, task.Info.TaskId, null, reason);
                    }
                    break;
                case MasterMessage.MessageOneofCase.Reconcile:
                    ReconcileLocked(m.Reconcile.TaskIds);
                    break;
                default:
                    // ping: liveness already recorded; framework messages and operations: a mock
                    // executor has nothing to do with them.
                    break;
            }
            EnsurePumpLocked();
        }
    }

    private void LaunchLocked(FrameworkInfo framework, RepeatedField<TaskInfo> tasks)
    {
        _frameworks[framework.Id] = framework;
        foreach (var info in tasks)
        {
            var key = Key(framework.Id, info.TaskId);
            if (_tasks.ContainsKey(key))
            {
                continue; // a re-sent launch of a task already running here
            }
            var task = new SimTask(framework.Id, info);
            _tasks[key] = task;
            Interlocked.Increment(ref host.Counters.Launched);
            Interlocked.Increment(ref host.Counters.Active);
            if (Label(info, "mock.fail_start") == "true")
            {
                EnqueueLocked(key, task, TaskState.TaskFailed, TaskStatus.Types.Reason.ContainerLaunchFailed,
                    "mock.fail_start is set: the simulated container failed to start", null);
                continue;
            }
            if (host.Options.SendStarting)
            {
                EnqueueLocked(key, task, TaskState.TaskStarting, TaskStatus.Types.Reason.Unspecified, "", null);
            }
            EnqueueLocked(key, task, TaskState.TaskRunning, TaskStatus.Types.Reason.Unspecified, "", null);
            task.IgnoreSigterm = Label(info, "mock.ignore_sigterm") == "true";
            var runMs = int.TryParse(Label(info, "mock.run_ms"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var ms)
                ? ms
                : (int)host.Options.DefaultRunTime.TotalMilliseconds;
            task.ExitCode = int.TryParse(Label(info, "mock.exit_code"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var code) ? code : 0;
            if (runMs == 0)
            {
                FinishLocked(key, task);
            }
            else if (runMs > 0)
            {
                host.Wheel.Schedule(TimeSpan.FromMilliseconds(runMs), this, SimTimerKind.Finish, key);
            }
        }
    }

    private void FinishLocked(string key, SimTask task)
    {
        if (task.Terminal)
        {
            return;
        }
        if (task.ExitCode == 0)
        {
            EnqueueLocked(key, task, TaskState.TaskFinished, TaskStatus.Types.Reason.Unspecified, "the command exited with status 0", 0);
        }
        else
        {
            EnqueueLocked(key, task, TaskState.TaskFailed, TaskStatus.Types.Reason.CommandExitedNonzero,
                $"the command exited with status {task.ExitCode}", task.ExitCode);
        }
    }

    private void KillLocked(string frameworkId, string taskId, KillPolicy? policy, TaskStatus.Types.Reason reason)
    {
        var key = Key(frameworkId, taskId);
        if (!_tasks.TryGetValue(key, out var task))
        {
            var gone = new SimTask(frameworkId, new TaskInfo { TaskId = taskId });
            _tasks[key] = gone;
            Interlocked.Increment(ref host.Counters.Active);
            EnqueueLocked(key, gone, TaskState.TaskGone, TaskStatus.Types.Reason.TaskUnknown,
                $"task {taskId} is not known on agent {AgentId}; nothing to kill", null);
            return;
        }
        if (task.Terminal || task.Killing)
        {
            return;
        }
        task.Killing = true;
        task.KillReason = reason;
        if (task.IgnoreSigterm)
        {
            var grace = policy?.GracePeriodSeconds > 0 ? TimeSpan.FromSeconds(policy.GracePeriodSeconds)
                : task.Info.KillPolicy?.GracePeriodSeconds > 0 ? TimeSpan.FromSeconds(task.Info.KillPolicy.GracePeriodSeconds)
                : host.Options.DefaultKillGrace;
            host.Wheel.Schedule(grace, this, SimTimerKind.KillDeadline, key);
            return;
        }
        EnqueueLocked(key, task, TaskState.TaskKilled, reason, "the task was killed", null);
    }

    private void ReconcileLocked(RepeatedField<string> taskIds)
    {
        var wanted = taskIds.Count == 0 ? null : new HashSet<string>(taskIds, StringComparer.Ordinal);
        foreach (var (key, task) in _tasks)
        {
            if (wanted is not null && !wanted.Contains(task.Info.TaskId))
            {
                continue;
            }
            if (task.Pending.Count > 0)
            {
                SendHeadLocked(key, task);
            }
            else if (task.Latest is { } latest)
            {
                var again = latest.Clone();
                again.Uuid = "";
                again.Source = TaskStatus.Types.Source.Agent;
                again.Reason = TaskStatus.Types.Reason.Reconciliation;
                again.Timestamp = Now();
                _outbox.Add(new AgentMessage.Types.StatusUpdate { FrameworkId = task.FrameworkId, Status = again });
            }
        }
    }

    private void AckLocked(string frameworkId, string taskId, string uuid)
    {
        var key = Key(frameworkId, taskId);
        if (!_tasks.TryGetValue(key, out var task) || task.Pending.Count == 0 || task.Pending.Peek().Uuid != uuid)
        {
            Interlocked.Increment(ref host.Counters.StaleAcks);
            return;
        }
        task.Pending.Dequeue();
        task.Attempt = 0;
        Interlocked.Increment(ref host.Counters.Acks);
        if (task.Pending.Count > 0)
        {
            SendHeadLocked(key, task);
        }
        else if (task.Terminal)
        {
            _tasks.Remove(key);
            Interlocked.Decrement(ref host.Counters.Active);
        }
    }

    private void EnqueueLocked(string key, SimTask task, TaskState state, TaskStatus.Types.Reason reason, string message, int? exitCode)
    {
        var status = new TaskStatus
        {
            TaskId = task.Info.TaskId,
            AgentId = AgentId,
            FrameworkId = task.FrameworkId,
            State = state,
            Reason = reason,
            Message = message,
            Source = state is TaskState.TaskGone || reason == TaskStatus.Types.Reason.ContainerLaunchFailed
                ? TaskStatus.Types.Source.Agent
                : TaskStatus.Types.Source.Executor,
            Uuid = Guid.NewGuid().ToString(),
            Timestamp = Now(),
        };
        if (exitCode is { } c)
        {
            status.ExitCode = c;
        }
        task.State = state;
        task.Latest = status;
        task.Terminal = Scheduler.Protocol.Tasks.TaskLifecycle.IsTerminal(state);
        task.Pending.Enqueue(status);
        if (task.Pending.Count == 1)
        {
            SendHeadLocked(key, task);
        }
    }

    private void SendHeadLocked(string key, SimTask task)
    {
        var head = task.Pending.Peek();
        if (_call is not null)
        {
            _outbox.Add(new AgentMessage.Types.StatusUpdate { FrameworkId = task.FrameworkId, Status = head });
            Interlocked.Increment(ref host.Counters.UpdatesSent);
        }
        var delay = host.StatusRetry.Delay(task.Attempt);
        host.Wheel.Schedule(delay, this, SimTimerKind.Retry, key, head.Uuid, task.Attempt, ++task.RetrySeq);
    }

    /// <summary>A timer of this agent fired (on the wheel's thread).</summary>
    public void OnTimer(SimTimer timer)
    {
        lock (_gate)
        {
            switch (timer.Kind)
            {
                case SimTimerKind.Heartbeat:
                    if (_call is null || _generation.ToString(CultureInfo.InvariantCulture) != timer.Token)
                    {
                        return;
                    }
                    if (host.Options.TimeProvider.GetElapsedTime(Volatile.Read(ref _lastMessage)) > HeartbeatInterval.AllowedSilence(_scheduledInterval, _heartbeatInterval))
                    {
                        _session?.Cancel(); // 3 pings missed: the master is lost; reconnect
                        return;
                    }
                    _heartbeatDue = true;
                    _scheduledInterval = _heartbeatInterval;
                    host.Wheel.Schedule(_heartbeatInterval, this, SimTimerKind.Heartbeat, "", timer.Token);
                    break;
                case SimTimerKind.Retry:
                    if (_tasks.TryGetValue(timer.Key, out var retried) && retried.RetrySeq == timer.Seq && retried.Pending.Count > 0 && retried.Pending.Peek().Uuid == timer.Token)
                    {
                        retried.Attempt = timer.Attempt + 1;
                        if (_call is not null)
                        {
                            Interlocked.Increment(ref host.Counters.Resends);
                        }
                        SendHeadLocked(timer.Key, retried);
                    }
                    break;
                case SimTimerKind.Finish:
                    if (_tasks.TryGetValue(timer.Key, out var finished) && !finished.Killing)
                    {
                        FinishLocked(timer.Key, finished);
                    }
                    break;
                case SimTimerKind.KillDeadline:
                    if (_tasks.TryGetValue(timer.Key, out var killed) && !killed.Terminal)
                    {
                        EnqueueLocked(timer.Key, killed, TaskState.TaskKilled, killed.KillReason, "the task ignored SIGTERM and was killed after its grace period", null);
                    }
                    break;
            }
            EnsurePumpLocked();
        }
    }

    private void EnsurePumpLocked()
    {
        if (_pumping || _call is null || (_outbox.Count == 0 && !_heartbeatDue))
        {
            return;
        }
        _pumping = true;
        _ = Task.Run(PumpAsync);
    }

    /// <summary>Writes heartbeats and batched updates on the stream, one write at a time.</summary>
    private async Task PumpAsync()
    {
        while (true)
        {
            AgentMessage message;
            AsyncDuplexStreamingCall<AgentMessage, MasterMessage> call;
            CancellationTokenSource? session;
            lock (_gate)
            {
                if (_call is null)
                {
                    _pumping = false;
                    return;
                }
                call = _call;
                session = _session;
                if (_heartbeatDue)
                {
                    _heartbeatDue = false;
                    message = new AgentMessage { Heartbeat = new AgentMessage.Types.Heartbeat { Sequence = ++_heartbeatSequence } };
                }
                else if (_outbox.Count > 0)
                {
                    var n = Math.Min(_outbox.Count, host.Options.MaxBatch);
                    var batch = new AgentMessage.Types.StatusUpdates();
                    batch.Updates.AddRange(_outbox.GetRange(0, n));
                    _outbox.RemoveRange(0, n);
                    message = new AgentMessage { StatusUpdates = batch };
                    Interlocked.Increment(ref host.Counters.Batches);
                }
                else
                {
                    _pumping = false;
                    return;
                }
            }
            try
            {
                await call.RequestStream.WriteAsync(message, session?.Token ?? CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception)
            {
                lock (_gate)
                {
                    _pumping = false;
                    try
                    {
                        session?.Cancel();
                    }
                    catch (ObjectDisposedException)
                    {
                    }
                }
                return;
            }
        }
    }

    private static string Key(string frameworkId, string taskId) => frameworkId + "\n" + taskId;

    private static string? Label(TaskInfo info, string key) => info.Labels.TryGetValue(key, out var v) ? v : null;

    private double Now() => host.Options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;

    private sealed class SimTask(string frameworkId, TaskInfo info)
    {
        public string FrameworkId { get; } = frameworkId;
        public TaskInfo Info { get; } = info;
        public TaskState State { get; set; } = TaskState.TaskStaging;
        public TaskStatus? Latest { get; set; }
        public Queue<TaskStatus> Pending { get; } = new();
        public int Attempt { get; set; }
        public int RetrySeq { get; set; }
        public bool Terminal { get; set; }
        public bool Killing { get; set; }
        public bool IgnoreSigterm { get; set; }
        public int ExitCode { get; set; }
        public TaskStatus.Types.Reason KillReason { get; set; }
    }
}
