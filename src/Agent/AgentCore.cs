using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Sched.V1;
using Scheduler.Agent.Checkpoint;
using Scheduler.Agent.Execution;
using Scheduler.Agent.Isolation;
using Scheduler.Agent.StatusUpdates;
using Scheduler.Agent.Supervision;

namespace Scheduler.Agent;

/// <summary>
/// The agent's task logic, independent of the transport: launches, kills, status updates
/// (through the checkpointed <see cref="StatusUpdateQueue"/>), acknowledgements, reconciliation,
/// recovery after a restart, usage. <see cref="MasterLink"/> feeds it master messages and sends
/// what it produces; tests drive it directly.
/// </summary>
public sealed partial class AgentCore : IAsyncDisposable
{
    private readonly AgentOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly AgentCheckpointStore _store;
    private readonly ExecutorSet _executors;
    private readonly ConcurrentDictionary<(string Framework, string Task), RunningTask> _tasks = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Task, byte> _monitors = new();
    private readonly UriFetcher _fetcher;

    /// <param name="executors">The executors to run tasks with; the core owns them from now on.</param>
    public AgentCore(AgentOptions options, IIsolator isolator, ExecutorSet executors, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(executors);
        _options = options;
        _time = time;
        _log = logger;
        Isolator = isolator;
        WorkDir = Path.GetFullPath(options.WorkDir);
        _store = new AgentCheckpointStore(WorkDir);
        Updates = new StatusUpdateQueue(Path.Combine(_store.MetaDir, "updates"), time, options.StatusRetryMin, options.StatusRetryMax);
        _executors = executors;
        _fetcher = new UriFetcher(Path.Combine(WorkDir, "cache"), new HttpClient(), options.MaxImageBytes, options.FetchAllowDirs);
        Directory.CreateDirectory(SandboxesDir);
        AgentId = _store.AgentId;
        Volumes = new Volumes.PersistentVolumes(WorkDir, _store.MetaDir, logger);
        SandboxOwners = new Files.SandboxOwners(Path.Combine(_store.MetaDir, "owners"));
    }

    /// <summary>The principal of each framework with sandboxes here (who may read them).</summary>
    public Files.SandboxOwners SandboxOwners { get; }

    public string WorkDir { get; }

    public string SandboxesDir => Path.Combine(WorkDir, "sandboxes");

    public IIsolator Isolator { get; }

    public StatusUpdateQueue Updates { get; }

    /// <summary>Where launches and task ends are counted (set by the host when metrics are served).</summary>
    public Telemetry.AgentMetrics? Metrics { get; set; }

    /// <summary>Persistent volumes and the checkpointed resources the master sent.</summary>
    public Volumes.PersistentVolumes Volumes { get; }

    /// <summary>The id the master assigned ("" before the first registration); checkpointed.</summary>
    public string AgentId { get; private set; }

    /// <summary>Records the id from <c>registered</c>.</summary>
    public void SetAgentId(string id)
    {
        if (id != AgentId)
        {
            _store.AgentId = id;
            AgentId = id;
        }
    }

    /// <summary>Tasks known now (running, or ended with unacknowledged updates).</summary>
    public IReadOnlyCollection<RunningTask> Tasks => [.. _tasks.Values];

    /// <summary>Launches tasks; every task gets STARTING, RUNNING and a terminal update (or a
    /// terminal one at once when invalid).</summary>
    public void Launch(FrameworkInfo framework, IEnumerable<TaskInfo> tasks, IReadOnlyDictionary<string, SecretValues>? secrets = null)
    {
        foreach (var task in tasks)
        {
            var problem = Validate(framework, task);
            if (problem is not null)
            {
                Enqueue(framework.Id, task.TaskId, TaskState.TaskError, TaskStatus.Types.Reason.TaskInvalid, problem);
                continue;
            }
            if (UserRefusal(framework, task) is { } refused)
            {
                Enqueue(framework.Id, task.TaskId, TaskState.TaskError, TaskStatus.Types.Reason.TaskUnauthorized, refused);
                continue;
            }
            SandboxOwners.Record(framework.Id, framework.Principal);
            var key = (framework.Id, task.TaskId);
            var running = new RunningTask(framework, task, NewContainerId(), ExecutorFor(task))
            {
                Secrets = secrets is not null && secrets.TryGetValue(task.TaskId, out var values) ? values.Values : [],
            };
            if (!_tasks.TryAdd(key, running))
            {
                Enqueue(framework.Id, task.TaskId, TaskState.TaskFailed, TaskStatus.Types.Reason.DuplicateTaskId,
                    $"task {task.TaskId} of framework {framework.Id} is already running on this agent; task ids must be unique per framework");
                continue;
            }
            Track(RunAsync(running, recovered: null));
        }
    }

    /// <summary>Kills a task (SIGTERM, grace, SIGKILL of its container) → TASK_KILLED with
    /// <paramref name="reason"/>. Unknown tasks get TASK_GONE (REASON_TASK_UNKNOWN).</summary>
    public async Task KillAsync(string frameworkId, string taskId, KillPolicy? policy, TaskStatus.Types.Reason reason)
    {
        if (!_tasks.TryGetValue((frameworkId, taskId), out var task) || task.Ended)
        {
            if (task is null)
            {
                Enqueue(frameworkId, taskId, TaskState.TaskGone, TaskStatus.Types.Reason.TaskUnknown, $"task {taskId} is not known to this agent");
            }
            return;
        }
        var grace = policy is { GracePeriodSeconds: > 0 } p ? TimeSpan.FromSeconds(p.GracePeriodSeconds)
            : TimeSpan.FromSeconds(ProcessExecutor.GraceSeconds(task.Info, _options));
        task.KillReason ??= reason;
        if (task.Handle is { } handle)
        {
            SaveCheckpoint(task);
            await task.Executor.KillAsync(handle, grace);
        }
        else
        {
            task.PendingKillGrace = grace;
        }
    }

    /// <summary>Kills every task of a framework.</summary>
    public async Task ShutdownFrameworkAsync(string frameworkId, TaskStatus.Types.Reason reason)
    {
        foreach (var t in _tasks.Values.Where(t => t.Framework.Id == frameworkId).ToList())
        {
            await KillAsync(frameworkId, t.Info.TaskId, null, reason);
        }
    }

    /// <summary>Kills every task (the agent was marked gone: nothing it runs may outlive it).</summary>
    public async Task KillAllAsync(TaskStatus.Types.Reason reason)
    {
        foreach (var t in _tasks.Values.Where(t => !t.Ended).ToList())
        {
            await KillAsync(t.Framework.Id, t.Info.TaskId, null, reason);
        }
    }

    /// <summary>Applies an acknowledgement; forgets the task once its terminal update is acknowledged.</summary>
    public void Acknowledge(string frameworkId, string taskId, string uuid)
    {
        if (!Updates.Acknowledge(frameworkId, taskId, uuid))
        {
            return;
        }
        if (_tasks.TryGetValue((frameworkId, taskId), out var task) && task.Ended && Updates.Pending(frameworkId, taskId).Count == 0)
        {
            _tasks.TryRemove((frameworkId, taskId), out _);
            _store.Delete(task.ContainerId);
            task.AcknowledgedTerminalAt = _time.GetUtcNow();
        }
    }

    /// <summary>
    /// Reconciliation: the latest status of the given tasks (all when empty). Tasks with
    /// unacknowledged updates get them re-sent through the queue; acknowledged ones are answered
    /// with an update without uuid (no ack needed), returned here for immediate sending.
    /// </summary>
    public List<AgentMessage.Types.StatusUpdate> Reconcile(IReadOnlyCollection<string> taskIds)
    {
        var answers = new List<AgentMessage.Types.StatusUpdate>();
        var any = false;
        foreach (var (framework, latest) in Updates.Tasks())
        {
            if (taskIds.Count > 0 && !taskIds.Contains(latest.TaskId))
            {
                continue;
            }
            var info = Updates.Latest(framework, latest.TaskId);
            if (info is { Acknowledged: true })
            {
                var copy = latest.Clone();
                copy.Uuid = "";
                copy.Reason = TaskStatus.Types.Reason.Reconciliation;
                copy.Timestamp = Now();
                answers.Add(new AgentMessage.Types.StatusUpdate { FrameworkId = framework, Status = copy });
            }
            else
            {
                any = true;
            }
        }
        if (any)
        {
            Updates.ResendAllNow();
        }
        return answers;
    }

    /// <summary>The register message: agent info plus every task it runs or holds updates for.</summary>
    public AgentMessage.Types.Register BuildRegister(AgentInfo info)
    {
        info.Id = AgentId;
        var register = new AgentMessage.Types.Register { AgentInfo = info };
        var frameworks = new Dictionary<string, FrameworkInfo>(StringComparer.Ordinal);
        foreach (var t in _tasks.Values)
        {
            var latest = Updates.Latest(t.Framework.Id, t.Info.TaskId);
            var record = new TaskRecord
            {
                TaskId = t.Info.TaskId,
                Name = t.Info.Name,
                FrameworkId = t.Framework.Id,
                AgentId = AgentId,
                State = latest?.Status.State ?? TaskState.TaskStaging,
                Status = latest?.Status,
                Role = t.Info.Resources.Select(r => r.AllocationRole).FirstOrDefault(r => !string.IsNullOrEmpty(r)) ?? "",
                ContainerType = t.Info.Container?.Type ?? ContainerInfo.Types.Type.Process,
                Info = t.Info,
                StatusAcknowledged = latest?.Acknowledged ?? false,
            };
            record.Resources.AddRange(t.Info.Resources);
            record.Labels.Add(t.Info.Labels);
            register.Tasks.Add(record);
            frameworks[t.Framework.Id] = t.Framework;
        }
        register.Frameworks.AddRange(frameworks.Values);
        return register;
    }

    /// <summary>Usage of every running task and the total.</summary>
    public AgentMessage.Types.Usage Usage()
    {
        var usage = new AgentMessage.Types.Usage { Total = new ResourceStatistics { Timestamp = Now() } };
        foreach (var t in _tasks.Values.Where(t => t.Handle is not null && !t.Ended))
        {
            ResourceStatistics? stats = null;
            try
            {
                stats = t.Executor.Stats(t.Handle!);
            }
            catch (IOException)
            {
            }
            if (stats is null)
            {
                continue;
            }
            usage.Tasks.Add(new TaskUsage { FrameworkId = t.Framework.Id, TaskId = t.Info.TaskId, Statistics = stats });
            var total = usage.Total;
            total.CpuUserSeconds += stats.CpuUserSeconds;
            total.CpuSystemSeconds += stats.CpuSystemSeconds;
            total.MemBytes += stats.MemBytes;
            total.MemLimitBytes += stats.MemLimitBytes;
            total.CpuLimit += stats.CpuLimit;
            total.Processes += stats.Processes;
            total.OomKills += stats.OomKills;
        }
        return usage;
    }

    /// <summary>Stops the agent's monitoring without touching tasks (they keep running under their
    /// supervisors and are re-adopted by the next agent on this work dir).</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        try
        {
            await Task.WhenAll(_monitors.Keys).WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception)
        {
            // Monitors end by cancellation.
        }
        _executors.Dispose();
        _stopping.Dispose();
    }

    private void Track(Task monitor)
    {
        _monitors[monitor] = 0;
        _ = monitor.ContinueWith(t => _monitors.TryRemove(t, out _), TaskScheduler.Default);
    }

    private IExecutor ExecutorFor(TaskInfo task) => task.Container?.Type switch
    {
        ContainerInfo.Types.Type.Mock when _executors.Find("mock") is { } mock => mock,
        ContainerInfo.Types.Type.Oci when _executors.Find("oci") is { } oci => oci,
        _ => _executors.Find("process")!,
    };

    private string? Validate(FrameworkInfo framework, TaskInfo task)
    {
        if (!IsSafeId(framework.Id))
        {
            return $"framework id '{framework.Id}' cannot name a sandbox directory (empty, '.', '..', or contains '/')";
        }
        if (!IsSafeId(task.TaskId))
        {
            return $"task id '{task.TaskId}' cannot name a sandbox directory (empty, '.', '..', or contains '/'); choose another id";
        }
        if (task.Container?.Type == ContainerInfo.Types.Type.Oci && _executors.Find("oci") is null)
        {
            return "this agent has no OCI executor; launch the task as a PROCESS or on another agent";
        }
        if (task.Container?.Type == ContainerInfo.Types.Type.Mock && _executors.Find("mock") is null)
        {
            return "this agent has no MOCK executor; launch the task as a PROCESS or on another agent";
        }
        if (task.Container?.Type != ContainerInfo.Types.Type.Mock && task.Command is null)
        {
            return "the task has no command; set TaskInfo.command";
        }
        return null;
    }

    /// <summary>
    /// Why <c>--allowed-task-users</c> refuses the task, or null: the user it would run as
    /// (<c>command.user</c>, else the framework's user, else the agent's own user; an OCI task
    /// naming none runs as its image's user, taken as root) must be in the list.
    /// </summary>
    private string? UserRefusal(FrameworkInfo framework, TaskInfo task)
    {
        if (_options.AllowedTaskUsers.Count == 0 || task.Container?.Type == ContainerInfo.Types.Type.Mock || task.Command is null)
        {
            return null;
        }
        var user = Execution.TaskSandbox.UserOf(task.Command, framework)
            ?? (task.Container?.Type == ContainerInfo.Types.Type.Oci ? "root" : Environment.UserName);
        return _options.AllowedTaskUsers.Contains(user, StringComparer.Ordinal)
            ? null
            : $"task '{task.TaskId}' would run as user '{user}', which this agent does not allow (--allowed-task-users {string.Join(",", _options.AllowedTaskUsers)}); set command.user to one of those, or run it on another agent";
    }

    /// <summary>Whether <paramref name="id"/> (a framework or task id) can name a sandbox directory.</summary>
    internal static bool IsSafeId(string id) => id.Length is > 0 and <= 200 && id is not ("." or "..") && !id.Contains('/', StringComparison.Ordinal) && !id.Contains('\0', StringComparison.Ordinal);

    private static string NewContainerId() => "c" + Guid.NewGuid().ToString("N")[..20];

    private double Now() => _time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;
}
