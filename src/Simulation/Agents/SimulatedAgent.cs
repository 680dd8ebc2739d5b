using Grpc.Net.Client;
using System.Globalization;
using Google.Protobuf.Collections;
using Sched.V1;
using Scheduler.Protocol;
using Scheduler.LinkClient;

namespace Scheduler.Simulation;

/// <summary>
/// One simulated agent: a real <c>AgentLink.Connect</c> stream with the mock executor's
/// behaviour. Status updates wait in an in-memory per-task queue (head of line, re-sent until
/// acknowledged); nothing is checkpointed, so a restarted simulation starts afresh.
/// </summary>
internal sealed class SimulatedAgent(SimulatedAgentHost host, int index, GrpcChannel channel) : ILinkParticipant
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, SimTask> _tasks = new(StringComparer.Ordinal);
    private readonly List<AgentMessage.Types.StatusUpdate> _outbox = [];
    private readonly Dictionary<string, FrameworkInfo> _frameworks = new(StringComparer.Ordinal);
    // The registered session, while there is one (updates are queued only for it).
    private LinkSession? _session;

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
            address => address == channel.Target ? channel : host.ChannelFor(address),
            this, // marked gone, a simulated agent has nothing to kill: it stops, as a refusal
            new LinkSessionOptions { Time = host.Options.TimeProvider, HeartbeatStagger = Random.Shared },
            redirected: null,
            lost: (_, _) => Interlocked.Increment(ref host.Counters.Reconnects),
            cancellationToken).ConfigureAwait(false);
        if (refusal is not null)
        {
            host.Refused($"{Hostname}: master {refusal.Address} refused the agent: {refusal.Detail}");
        }
    }

    public AgentMessage.Types.Register BuildRegister()
    {
        lock (_gate)
        {
            return BuildRegisterLocked();
        }
    }

    public void OnRegistered(MasterMessage.Types.Registered registered, LinkSession session)
    {
        lock (_gate)
        {
            AgentId = registered.AgentId;
            _session = session;
            _outbox.Clear();
            foreach (var (key, task) in _tasks)
            {
                if (task.Pending.Count > 0)
                {
                    SendHeadLocked(key, task);
                }
            }
            WakeWriterLocked();
        }
        host.Registered(this);
    }

    public void OnEnded(LinkSession session, Exception? reason)
    {
        lock (_gate)
        {
            if (_session == session)
            {
                _session = null;
                _outbox.Clear();
            }
        }
    }

    /// <summary>The next batch of updates for the writer (up to MaxBatch).</summary>
    public AgentMessage? TakeOutgoing()
    {
        lock (_gate)
        {
            if (_outbox.Count == 0)
            {
                return null;
            }
            var n = Math.Min(_outbox.Count, host.Options.MaxBatch);
            var batch = new AgentMessage.Types.StatusUpdates();
            batch.Updates.AddRange(_outbox.GetRange(0, n));
            _outbox.RemoveRange(0, n);
            Interlocked.Increment(ref host.Counters.Batches);
            return new AgentMessage { StatusUpdates = batch };
        }
    }

    private AgentMessage.Types.Register BuildRegisterLocked()
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

    public ValueTask HandleAsync(MasterMessage m, LinkSession session, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            switch (m.MessageCase)
            {
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
                    // ping: the session adopted its interval; framework messages and operations: a
                    // mock executor has nothing to do with them.
                    break;
            }
            WakeWriterLocked();
        }
        return ValueTask.CompletedTask;
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
        if (_session is not null)
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
                case SimTimerKind.Retry:
                    if (_tasks.TryGetValue(timer.Key, out var retried) && retried.RetrySeq == timer.Seq && retried.Pending.Count > 0 && retried.Pending.Peek().Uuid == timer.Token)
                    {
                        retried.Attempt = timer.Attempt + 1;
                        if (_session is not null)
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
            WakeWriterLocked();
        }
    }

    private void WakeWriterLocked()
    {
        if (_outbox.Count > 0)
        {
            _session?.Wake();
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
