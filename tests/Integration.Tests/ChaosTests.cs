using Scheduler.Resilience;
using System.Diagnostics;
using System.Globalization;
using Grpc.Core;
using Sched.V1;
using Scheduler.Cli.Cluster;
using Scheduler.FrameworkSdk;
using Scheduler.Protocol;
using Scheduler.Testing;
using Xunit;
using Xunit.Abstractions;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Integration.Tests;

/// <summary>
/// Chaos on real processes: 3 masters on a 3-member etcd, 5 agents (mock executor), and a framework
/// keeping 200 tasks running (some end on their own and are replaced). Each round SIGKILLs the
/// leader, freezes a master (SIGSTOP/SIGCONT), SIGKILLs and restarts an agent, and cuts an agent
/// off past its timeout (SIGSTOP). After every fault the cluster must be back to full strength
/// within 10 s, and the books must balance: every task the framework launched accounted for
/// exactly once, by reconciliation and by the agents' reports to the master; no task ran twice; no
/// acknowledged update undone; no resource offered twice.
/// </summary>
public sealed class ChaosTests(ITestOutputHelper output)
{
    private const int Rounds = 10;
    private const int Target = 200;
    private const int AgentCount = 5;
    private static readonly TimeSpan FullStrength = TimeSpan.FromSeconds(10);

    /// <summary>A frozen master must not stall the probing.</summary>
    private static readonly TimeSpan ProbeDeadline = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task Ten_rounds_of_faults_lose_and_duplicate_nothing_and_recover_within_ten_seconds()
    {
        await using var cluster = new ClusterFixture();
        await using var etcd = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 3, BaseDirectory = Path.Combine(cluster.WorkDir, "etcd") });
        var urls = string.Join(",", etcd.Endpoints.Select(e => "http://" + e));
        var masters = new List<ClusterFixture.Node>();
        for (var i = 0; i < 3; i++)
        {
            masters.Add(await cluster.StartMasterAsync("--etcd", urls, "--lease-ttl", "2"));
        }
        await Task.WhenAll(Enumerable.Range(0, AgentCount).Select(_ => cluster.StartAgentAsync()));
        var all = string.Join(",", masters.Select(m => m.Address));
        await using var keeper = new Keeper(all, Target);
        await WaitFullStrengthAsync(cluster, masters, keeper, TimeSpan.FromSeconds(60), "the first 200 tasks");

        var recovery = new Dictionary<string, List<double>>(StringComparer.Ordinal);
        var random = new Random(20261203);
        for (var round = 1; round <= Rounds; round++)
        {
            // 1. SIGKILL the leader, then bring it back as a follower.
            var leader = await MasterFailoverTests.WaitForLeaderAsync(masters, exclude: null, TimeSpan.FromSeconds(20));
            await MeasureAsync("leader SIGKILL", round, async () =>
            {
                await ClusterFixture.KillAsync(leader);
                await cluster.RestartAsync(leader);
            });

            // 2. Freeze a master (any, the leader included) for 3 s.
            var frozen = masters[random.Next(masters.Count)];
            await MeasureAsync("master SIGSTOP 3 s", round, async () =>
            {
                DaemonProcess.Signal(frozen.Process!.Pid, 19);
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(3)); // the fault's length, not a synchronisation
                }
                finally
                {
                    DaemonProcess.Signal(frozen.Process!.Pid, 18);
                }
            });

            // 3. SIGKILL an agent and restart it (its mock tasks do not survive: they are replaced).
            var crashed = cluster.Agents[random.Next(AgentCount)];
            await MeasureAsync("agent SIGKILL + restart", round, async () =>
            {
                await ClusterFixture.KillAsync(crashed);
                await cluster.RestartAsync(crashed);
            });

            // 4. Cut an agent off past its timeout (2 s): unreachable, then back with its tasks.
            var cut = cluster.Agents[random.Next(AgentCount)];
            await MeasureAsync("agent SIGSTOP 3.5 s", round, async () =>
            {
                DaemonProcess.Signal(cut.Process!.Pid, 19);
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(3.5)); // the fault's length
                }
                finally
                {
                    DaemonProcess.Signal(cut.Process!.Pid, 18);
                }
            });
            output.WriteLine($"round {round}: {keeper.Launched} tasks launched so far, {keeper.EndedCount} ended and replaced");
        }

        foreach (var (fault, times) in recovery)
        {
            times.Sort();
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{fault}: {times.Count} faults, recovery p50 {times[times.Count / 2]:0.00} s, max {times[^1]:0.00} s"));
        }
        Assert.Empty(keeper.Violations);

        async Task MeasureAsync(string fault, int round, Func<Task> inject)
        {
            var started = Stopwatch.StartNew();
            await inject();
            var injected = started.Elapsed;
            await WaitFullStrengthAsync(cluster, masters, keeper, FullStrength, $"round {round}, after {fault}");
            var took = (started.Elapsed - injected).TotalSeconds;
            if (!recovery.TryGetValue(fault, out var list))
            {
                recovery[fault] = list = [];
            }
            list.Add(took);
            Assert.True(keeper.Violations.Count == 0, $"round {round}, {fault}: {string.Join("; ", keeper.Violations.Take(5))}");
        }
    }

    /// <summary>
    /// Full strength: one leader and two followers answering, every agent active, the framework's
    /// 200 live tasks running — exactly once each, on the agent the master says — and explicit
    /// reconciliation confirming each. Offered plus allocated never exceeds an agent's total.
    /// </summary>
    private static async Task WaitFullStrengthAsync(ClusterFixture cluster, IReadOnlyList<ClusterFixture.Node> masters, Keeper keeper, TimeSpan within, string when)
    {
        var last = "";
        await Poll.UntilAsync(async () =>
        {
            // A broken book fails at once (it does not heal by waiting) and says what broke.
            Assert.True(keeper.Violations.Count == 0, $"{when}: {string.Join("; ", keeper.Violations.Take(5))}");
            last = await ShortfallAsync(masters, keeper);
            return last.Length == 0;
        }, within, () => $"full strength {when} (last shortfall: {last})", TimeSpan.FromMilliseconds(100));
        await keeper.ReconcileAllAsync(TimeSpan.FromSeconds(10));
    }

    private static async Task<string> ShortfallAsync(IReadOnlyList<ClusterFixture.Node> masters, Keeper keeper)
    {
        var leaders = 0;
        var answering = 0;
        string? leaderAddress = null;
        foreach (var m in masters)
        {
            try
            {
                using var probe = new MasterProbe(m.Address, ProbeDeadline);
                var health = await probe.CallAsync(OperatorMethods.GetHealth, new GetHealthRequest());
                answering++;
                if (health.Role == "leader")
                {
                    leaders++;
                    leaderAddress = m.Address;
                }
            }
            catch (RpcException)
            {
            }
        }
        if (answering < masters.Count || leaders != 1)
        {
            return $"{answering} of {masters.Count} masters answer, {leaders} lead";
        }
        using var leader = new MasterProbe(leaderAddress!, ProbeDeadline);
        var agents = (await leader.CallAsync(OperatorMethods.GetAgents, new GetAgentsRequest())).Agents;
        var active = agents.Count(a => a.Status == AgentStatus.AgentActive);
        if (active < AgentCount)
        {
            return $"{active} of {AgentCount} agents active";
        }
        foreach (var a in agents)
        {
            foreach (var name in new[] { "cpus", "mem" })
            {
                var total = a.Total.Where(r => r.Name == name).Sum(r => r.Scalar);
                var used = a.Allocated.Concat(a.Offered).Where(r => r.Name == name).Sum(r => r.Scalar);
                if (used > total + 1e-9)
                {
                    keeper.Violate($"agent {a.Info.Id}: {name} offered + allocated {used} > total {total}");
                }
            }
        }
        // The framework's view first: it only ever lags the master's (the master changes a task's
        // state before it forwards the update), so a task RUNNING on the master that the framework
        // had already given up is never an artefact of the order of the two reads.
        var view = keeper.Snapshot();
        var tasks = (await leader.CallAsync(OperatorMethods.GetTasks, new GetTasksRequest { FrameworkId = keeper.FrameworkId, IncludeCompleted = true })).Tasks;
        var current = tasks.Where(t => !t.State.IsTerminal()).ToList();
        var duplicate = current.GroupBy(t => t.TaskId).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            keeper.Violate($"task {duplicate.Key} is on {duplicate.Count()} agents: {string.Join(", ", duplicate.Select(t => t.AgentId))}");
        }
        var onMaster = current.GroupBy(t => t.TaskId).ToDictionary(g => g.Key, g => g.First());
        var ended = tasks.Where(t => t.State.IsTerminal()).GroupBy(t => t.TaskId).ToDictionary(g => g.Key, g => g.Last());
        var now = DateTimeOffset.UtcNow;

        // Some tasks end on their own all the time. Their terminal updates and the launches that
        // replace them are in flight at almost any instant of a loaded machine, so they do not
        // count against full strength as long as they are recent (younger than the recovery bound):
        // a task the master has FINISHED whose update the framework has not acknowledged yet, and
        // the replacement of such a task while it starts. Nothing else is excused.
        var awaiting = view.NaturalEndings.Count(t => now - t < FullStrength);
        if (awaiting < view.NaturalEndings.Count)
        {
            return $"{view.NaturalEndings.Count - awaiting} task(s) that ended on their own not replaced within {FullStrength.TotalSeconds:0} s";
        }
        var live = view.Tasks.Where(t => !Keeper.Ended(t.State)).ToList();
        if (live.Count + awaiting != Target)
        {
            return $"the framework holds {live.Count} live tasks and {awaiting} to replace, of {Target}";
        }
        var liveIds = live.Select(t => t.Id).ToHashSet(StringComparer.Ordinal);
        var extra = onMaster.Values.Where(t => t.State == TaskState.TaskRunning && !liveIds.Contains(t.TaskId)).Select(t => t.TaskId).Take(3).ToList();
        if (extra.Count > 0)
        {
            return $"RUNNING on the master but not live for the framework: {string.Join("; ", extra.Select(id => $"{id} ({keeper.Describe(id)})"))}";
        }
        var running = 0;
        var inFlight = 0;
        foreach (var t in live)
        {
            var m = onMaster.GetValueOrDefault(t.Id);
            if (t.State == TaskState.TaskRunning && m is { State: TaskState.TaskRunning } && m.AgentId == t.Agent)
            {
                running++;
            }
            else if (t.State == TaskState.TaskRunning && t.EndsOnItsOwn && m is null && ended.TryGetValue(t.Id, out var done)
                && done.State == TaskState.TaskFinished && now - DateTimeOffset.FromUnixTimeMilliseconds((long)(done.Status.Timestamp * 1000)) < FullStrength)
            {
                inFlight++; // it finished; the update is on its way to the framework
            }
            else if (t.Replaces && now - t.LaunchedAt < FullStrength && t.State is TaskState.TaskStaging or TaskState.TaskStarting
                && (m is null || m.AgentId == t.Agent) && !ended.ContainsKey(t.Id))
            {
                inFlight++; // the replacement of a task that ended on its own, starting
            }
            else
            {
                var master = m is not null ? $"{m.State} on {m.AgentId}" : ended.TryGetValue(t.Id, out var e) ? $"{e.State} ({e.Status?.Reason}: {e.Status?.Message})" : "not known";
                return $"{running} running; task {t.Id}: framework has it {t.State} on {t.Agent}, master {master}";
            }
        }
        return "";
    }

    /// <summary>
    /// The framework: keeps <c>target</c> tasks live, replacing ended ones (a fifth of them end on
    /// their own after 5–40 s). Waits on TASK_UNREACHABLE (the task may come back) and treats
    /// TASK_UNKNOWN as never launched. Records violations of the books as it reads its updates.
    /// </summary>
    private sealed class Keeper : IAsyncDisposable
    {
        private readonly SchedulerClient _client;
        private readonly Task _reader;
        private readonly CancellationTokenSource _stop = new();
        private readonly Lock _lock = new();
        private readonly Dictionary<string, Tracked> _tasks = new(StringComparer.Ordinal);
        private readonly List<string> _violations = [];
        private readonly Random _random = new(7);
        private readonly int _target;
        private readonly Queue<DateTimeOffset> _naturalEndings = new();
        private int _next;
        private int _ended;
        private TaskCompletionSource _reconciled = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private HashSet<string> _awaitingReconcile = [];

        public Keeper(string masters, int target)
        {
            _target = target;
            var framework = new FrameworkInfo { Name = "chaos", FailoverTimeoutSeconds = 600, Roles = { "chaos" } };
            framework.Capabilities.Add(FrameworkCapability.PartitionAware);
            _client = new SchedulerClient(new SchedulerClientOptions
            {
                Masters = masters.Split(','),
                Framework = framework,
                AutoAcknowledge = true,
                Backoff = new Backoff(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(1)),
            });
            _reader = Task.Run(ReadAsync);
        }

        public string FrameworkId => _client.FrameworkId ?? "";

        public int Launched => Volatile.Read(ref _next);

        public int EndedCount => Volatile.Read(ref _ended);

        public IReadOnlyList<string> Violations
        {
            get
            {
                lock (_lock)
                {
                    return [.. _violations];
                }
            }
        }

        public void Violate(string what)
        {
            lock (_lock)
            {
                _violations.Add(what);
            }
        }

        /// <summary>Live tasks the framework has seen RUNNING: id → agent.</summary>
        public Dictionary<string, string> Running()
        {
            lock (_lock)
            {
                return _tasks.Where(kv => kv.Value.State == TaskState.TaskRunning).ToDictionary(kv => kv.Key, kv => kv.Value.Agent!);
            }
        }

        /// <summary>The framework's view: every task it launched, and when each task that ended on
        /// its own (and is not replaced yet) ended.</summary>
        public KeeperView Snapshot()
        {
            lock (_lock)
            {
                return new KeeperView(
                    [.. _tasks.Select(kv => new TaskView(kv.Key, kv.Value.State, kv.Value.Agent ?? "", kv.Value.EndsOnItsOwn, kv.Value.Replaces, kv.Value.LaunchedAt))],
                    [.. _naturalEndings]);
            }
        }

        /// <summary>The framework's view of a task: its state and the last update's reason and message.</summary>
        public string Describe(string taskId)
        {
            lock (_lock)
            {
                return _tasks.TryGetValue(taskId, out var t) ? $"framework: {t.State}, {t.LastUpdate}" : "never launched by the framework";
            }
        }

        /// <summary>Explicit reconciliation of every live task; each must be answered RUNNING on its agent.</summary>
        public async Task ReconcileAllAsync(TimeSpan within)
        {
            List<(string, string)> live;
            Task answered;
            lock (_lock)
            {
                live = _tasks.Where(kv => kv.Value.State == TaskState.TaskRunning).Select(kv => (kv.Key, kv.Value.Agent!)).ToList();
                _awaitingReconcile = live.Select(l => l.Item1).ToHashSet(StringComparer.Ordinal);
                _reconciled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                answered = _reconciled.Task;
            }
            await _client.ReconcileAsync(live);
            try
            {
                await answered.WaitAsync(within);
            }
            catch (TimeoutException)
            {
                lock (_lock)
                {
                    Violate($"reconciliation left {_awaitingReconcile.Count} task(s) unanswered, e.g. {string.Join(", ", _awaitingReconcile.Take(3))}");
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await _client.TeardownAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
            }
            catch (Exception e) when (e is RpcException or SchedulerException or OperationCanceledException)
            {
            }
            await _client.DisposeAsync();
            await _reader.ContinueWith(_ => { }, TaskScheduler.Default);
        }

        private async Task ReadAsync()
        {
            await foreach (var e in _client.ReadEventsAsync(_stop.Token))
            {
                switch (e.EventCase)
                {
                    case Event.EventOneofCase.Subscribed:
                        // A new leader knows only the tasks its agents report: a launch the old
                        // leader accepted but never delivered is news to nobody. As every framework
                        // should after a failover, ask about the tasks not heard of since launch.
                        List<(string, string)> staging;
                        lock (_lock)
                        {
                            staging = [.. _tasks.Where(kv => kv.Value.State == TaskState.TaskStaging).Select(kv => (kv.Key, kv.Value.Agent!))];
                        }
                        if (staging.Count > 0)
                        {
                            _ = ReconcileLaterAsync(staging);
                        }
                        break;
                    case Event.EventOneofCase.Offers:
                        await OnOffersAsync(e.Offers.Offers_);
                        break;
                    case Event.EventOneofCase.Update:
                        OnUpdate(e.Update.Status);
                        break;
                    case Event.EventOneofCase.Updates:
                        foreach (var s in e.Updates.Statuses)
                        {
                            OnUpdate(s);
                        }
                        break;
                }
            }
        }

        private async Task OnOffersAsync(IReadOnlyList<Offer> offers)
        {
            foreach (var offer in offers)
            {
                var launch = new List<TaskInfo>();
                lock (_lock)
                {
                    var live = _tasks.Count(kv => !Ended(kv.Value.State));
                    var left = new OfferResources(offer);
                    while (live + launch.Count < _target)
                    {
                        // The first launches replace tasks that ended on their own, oldest first.
                        var replaces = _naturalEndings.Count > launch.Count;
                        var id = "c" + _next.ToString(CultureInfo.InvariantCulture);
                        // One task in five ends on its own after 5–40 s and is replaced.
                        TimeSpan? runFor = _random.Next(5) == 0 ? TimeSpan.FromSeconds(5 + _random.Next(35)) : null;
                        if (!left.TryCarve(new TaskBuilder(id).Mock(runFor).Cpus(0.05).Mem(8), out var task))
                        {
                            break;
                        }
                        _next++;
                        launch.Add(task);
                        _tasks[id] = new Tracked { State = TaskState.TaskStaging, Agent = offer.AgentId, EndsOnItsOwn = runFor is not null, Replaces = replaces, LaunchedAt = DateTimeOffset.UtcNow };
                    }
                    for (var i = 0; i < launch.Count && _naturalEndings.Count > 0; i++)
                    {
                        _naturalEndings.Dequeue();
                    }
                }
                try
                {
                    if (launch.Count > 0)
                    {
                        await _client.LaunchAsync(offer, launch, refuseSeconds: 0.2, _stop.Token);
                    }
                    else
                    {
                        await _client.DeclineAsync([offer.Id], 0.5, _stop.Token);
                    }
                }
                catch (Exception ex) when (ex is RpcException or SchedulerException)
                {
                    // A failover mid-call: the launch may or may not have happened; reconciliation
                    // and the agents' re-registration tell (TASK_UNKNOWN: it never did).
                    var ids = launch.Select(t => t.TaskId).ToList();
                    if (ids.Count > 0)
                    {
                        _ = ReconcileLaterAsync(ids.Select(id => (id, offer.AgentId)).ToList());
                    }
                }
            }
        }

        /// <summary>
        /// Reconciles tasks whose launch call failed until each has been heard of: the master does
        /// not answer while the task's agent may still re-register with it, so one question may
        /// stay unanswered (a task it never saw launched is then TASK_UNKNOWN on asking again).
        /// </summary>
        private async Task ReconcileLaterAsync(List<(string, string)> tasks)
        {
            while (!_stop.IsCancellationRequested)
            {
                List<(string, string)> unheard;
                lock (_lock)
                {
                    unheard = tasks.Where(t => _tasks[t.Item1].State == TaskState.TaskStaging).ToList();
                }
                if (unheard.Count == 0)
                {
                    return;
                }
                try
                {
                    await _client.WaitForSubscriptionAsync().WaitAsync(TimeSpan.FromSeconds(30), _stop.Token);
                    await _client.ReconcileAsync(unheard, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                catch (Exception e) when (e is RpcException or SchedulerException or TimeoutException)
                {
                }
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), _stop.Token); // the interval between questions
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }

        private void OnUpdate(TaskStatus status)
        {
            lock (_lock)
            {
                if (!_tasks.TryGetValue(status.TaskId, out var task))
                {
                    _violations.Add($"update for task {status.TaskId} the framework never launched: {status.State}");
                    return;
                }
                if (_awaitingReconcile.Contains(status.TaskId) && status.Reason == TaskStatus.Types.Reason.Reconciliation)
                {
                    var finishedMeanwhile = task.EndsOnItsOwn && status.State == TaskState.TaskFinished;
                    if ((status.State != TaskState.TaskRunning && !finishedMeanwhile) || status.AgentId != task.Agent)
                    {
                        _violations.Add($"reconciliation of running task {status.TaskId} on {task.Agent} answered {status.State} on {status.AgentId}");
                    }
                    _awaitingReconcile.Remove(status.TaskId);
                    if (_awaitingReconcile.Count == 0)
                    {
                        _reconciled.TrySetResult();
                    }
                }
                if (Ended(task.State))
                {
                    if (!Ended(status.State))
                    {
                        _violations.Add($"task {status.TaskId} was {task.State} (acknowledged) and then {status.State}");
                    }
                    return;
                }
                if (status.State == TaskState.TaskRunning && task.RanOn is { } first && first != status.AgentId)
                {
                    _violations.Add($"task {status.TaskId} ran on {first} and on {status.AgentId}");
                }
                if (status.State == TaskState.TaskRunning)
                {
                    task.RanOn ??= status.AgentId;
                    task.Agent = status.AgentId;
                }
                task.State = status.State;
                task.LastUpdate = $"{status.Reason} from {status.Source}: {status.Message}";
                if (Ended(status.State))
                {
                    _ended++;
                    if (task.EndsOnItsOwn && status.State == TaskState.TaskFinished)
                    {
                        _naturalEndings.Enqueue(DateTimeOffset.UtcNow);
                    }
                    if (_awaitingReconcile.Remove(status.TaskId) && _awaitingReconcile.Count == 0)
                    {
                        _reconciled.TrySetResult();
                    }
                }
            }
        }

        /// <summary>Over for the framework: terminal, or unknown to the master (never launched).</summary>
        public static bool Ended(TaskState state) => state.IsTerminal() || state == TaskState.TaskUnknown;

        private sealed class Tracked
        {
            public TaskState State { get; set; }

            public string? Agent { get; set; }

            public string? RanOn { get; set; }

            public string LastUpdate { get; set; } = "";

            /// <summary>Launched to end on its own after a while.</summary>
            public bool EndsOnItsOwn { get; init; }

            /// <summary>Launched to replace a task that ended on its own.</summary>
            public bool Replaces { get; init; }

            public DateTimeOffset LaunchedAt { get; init; }
        }
    }
}

/// <summary>A copy of the chaos framework's books at one instant.</summary>
internal sealed record KeeperView(IReadOnlyList<TaskView> Tasks, IReadOnlyList<DateTimeOffset> NaturalEndings);

/// <summary>One task as the chaos framework sees it.</summary>
internal sealed record TaskView(string Id, TaskState State, string Agent, bool EndsOnItsOwn, bool Replaces, DateTimeOffset LaunchedAt);
