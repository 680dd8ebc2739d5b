using System.Diagnostics;
using System.Globalization;
using Sched.V1;
using Scheduler.FrameworkSdk;
using Scheduler.Protocol.Resources;

namespace Scheduler.Simulation;

/// <summary>
/// A framework on the C# SDK that accepts every offer and launches as many small MOCK tasks as
/// fit until its total is launched; it acknowledges every update carrying a uuid, in batches.
/// Records Accept → RUNNING latency per task, counts distinct RUNNING / terminal tasks, and
/// checks exactly-once completion: a task whose terminal updates carry different uuids (two
/// distinct terminal updates, not re-sends of one) is counted in <see cref="DuplicateTerminals"/>.
/// The one load generator of the repository: bench/Load and the integration test
/// <c>LoadCorrectnessTests</c> both run it.
/// </summary>
public sealed class LoadFramework : IAsyncDisposable
{
    private const double TaskCpus = 0.01;
    private const double TaskMem = 1;
    private static readonly List<Resource> TaskResources = ResourceText.Parse("cpus:0.01;mem:1");

    private readonly SchedulerClient _client;
    private readonly int _total;
    private readonly int _runMs;
    private readonly string _prefix;
    private readonly long[] _acceptedAt;
    private readonly double[] _latencyMs;
    private readonly byte[] _state; // 0 none, 1 running seen, 2 terminal seen
    private readonly string?[] _terminalUuid;
    private int _duplicateTerminals;
    private int _notFinished;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _allRunning = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _allTerminal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly System.Threading.Channels.Channel<Sched.V1.TaskStatus> _acks = System.Threading.Channels.Channel.CreateUnbounded<Sched.V1.TaskStatus>();
    private Task? _loop;
    private Task? _ackLoop;
    private int _next;
    private int _running;
    private int _terminal;

    private readonly int _ratePerSecond;
    private readonly System.Threading.Channels.Channel<Offer> _paced = System.Threading.Channels.Channel.CreateUnbounded<Offer>();
    private Task? _pacer;

    /// <param name="master">Master address.</param>
    /// <param name="name">Framework name (task ids are NAME-tN).</param>
    /// <param name="total">Tasks to launch in all.</param>
    /// <param name="runMs">The tasks' <c>mock.run_ms</c> (-1: run until killed).</param>
    /// <param name="ratePerSecond">0: accept every offer as it comes (burst). Otherwise launch at
    /// this steady rate: offers wait in a queue and each Accept launches a slice of 5 ms worth of
    /// tasks at its due time (the rest of the offer goes back to the allocator unfiltered).</param>
    /// <param name="channel">Transport and credentials (TLS, token); null: plaintext, no token.</param>
    public LoadFramework(string master, string name, int total, int runMs, int ratePerSecond = 0, Scheduler.Channels.GrpcChannelSettings? channel = null)
    {
        _total = total;
        _runMs = runMs;
        _ratePerSecond = ratePerSecond;
        _prefix = name + "-t";
        _acceptedAt = new long[total];
        _latencyMs = new double[total];
        _state = new byte[total];
        _terminalUuid = new string?[total];
        _client = new SchedulerClient(new SchedulerClientOptions
        {
            Masters = [master],
            Framework = new FrameworkInfo { Name = name, Roles = { "load" }, FailoverTimeoutSeconds = 600 },
            CallTimeout = TimeSpan.FromSeconds(60),
            AutoAcknowledge = false,
            Channel = channel ?? new Scheduler.Channels.GrpcChannelSettings(),
            Token = null,
        });
    }

    public long FirstAcceptAt { get; private set; }

    public long LastRunningAt { get; private set; }

    public long LastTerminalAt { get; private set; }

    public long Offers { get; private set; }

    public long Updates { get; private set; }

    public long Failed { get; private set; }

    public long FailedCalls;

    public string? FirstFailure { get; private set; }

    public int Running => Volatile.Read(ref _running);

    public int Terminal => Volatile.Read(ref _terminal);

    /// <summary>Terminal updates whose uuid differs from the task's first terminal update.</summary>
    public int DuplicateTerminals => Volatile.Read(ref _duplicateTerminals);

    /// <summary>Tasks whose (first) terminal state was not TASK_FINISHED.</summary>
    public int NotFinished => Volatile.Read(ref _notFinished);

    /// <summary>The framework id once subscribed (empty before).</summary>
    public string FrameworkId => _client.FrameworkId ?? "";

    public Task AllRunning => _allRunning.Task;

    public Task AllTerminal => _allTerminal.Task;

    public IEnumerable<double> Latencies => _latencyMs.Where((_, i) => _state[i] != 0);

    public long AckFailures;

    public void Start()
    {
        _loop = Task.Run(() => RunAsync(_stop.Token));
        _ackLoop = Task.Run(() => AckLoopAsync(_stop.Token));
        if (_ratePerSecond > 0)
        {
            _pacer = Task.Run(() => PaceAsync(_stop.Token));
        }
    }

    /// <summary>Launches queued offers at the configured rate, one slice per Accept.</summary>
    private async Task PaceAsync(CancellationToken ct)
    {
        var slice = Math.Max(1, _ratePerSecond / 200);
        long started = 0;
        var launched = 0;
        try
        {
            while (await _paced.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                while (_paced.Reader.TryRead(out var offer))
                {
                    if (started == 0)
                    {
                        started = Stopwatch.GetTimestamp();
                    }
                    var due = TimeSpan.FromSeconds(launched / (double)_ratePerSecond) - Stopwatch.GetElapsedTime(started);
                    if (due > TimeSpan.Zero)
                    {
                        await Task.Delay(due, ct).ConfigureAwait(false);
                    }
                    launched += Launch(offer, slice, ct);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Acknowledges in batches, terminal and non-terminal updates in separate calls: the master
    /// rejects a whole Acknowledge batch when one task of it has left its bounded completed-task
    /// list, which must not hold back the acknowledgements of running tasks.
    /// </summary>
    private async Task AckLoopAsync(CancellationToken ct)
    {
        var live = new List<Sched.V1.TaskStatus>();
        var done = new List<Sched.V1.TaskStatus>();
        try
        {
            while (await _acks.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                live.Clear();
                done.Clear();
                while (live.Count + done.Count < 1024 && _acks.Reader.TryRead(out var s))
                {
                    (TaskStates.IsTerminal(s.State) ? done : live).Add(s);
                }
                foreach (var batch in new[] { live, done })
                {
                    if (batch.Count == 0)
                    {
                        continue;
                    }
                    try
                    {
                        await _client.AcknowledgeAsync(batch, ct).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        Interlocked.Add(ref AckFailures, batch.Count);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    public Task TeardownAsync() => _client.TeardownAsync();

    private async Task RunAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var e in _client.ReadEventsAsync(ct))
            {
                switch (e.EventCase)
                {
                    case Event.EventOneofCase.Offers:
                        foreach (var offer in e.Offers.Offers_)
                        {
                            Offers++;
                            if (_ratePerSecond > 0)
                            {
                                _paced.Writer.TryWrite(offer);
                            }
                            else
                            {
                                Launch(offer, int.MaxValue, ct);
                            }
                        }
                        break;
                    case Event.EventOneofCase.Update:
                        OnUpdate(e.Update.Status);
                        break;
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>Launches up to <paramref name="most"/> tasks on the offer; returns how many.</summary>
    private int Launch(Offer offer, int most, CancellationToken ct)
    {
        var cpus = OfferResources.Scalar(offer.Resources, "cpus");
        var mem = OfferResources.Scalar(offer.Resources, "mem");
        var fit = (int)Math.Min(Math.Floor(cpus / TaskCpus + 1e-6), Math.Floor(mem / TaskMem + 1e-6));
        var n = Math.Min(Math.Min(fit, most), _total - _next);
        if (n <= 0)
        {
            _ = Call(_client.DeclineAsync([offer.Id], refuseSeconds: _next >= _total ? 3600 : 0, ct));
            return 0;
        }
        var tasks = new List<TaskInfo>(n);
        var now = Stopwatch.GetTimestamp();
        if (FirstAcceptAt == 0)
        {
            FirstAcceptAt = now;
        }
        var runMs = _runMs.ToString(CultureInfo.InvariantCulture);
        for (var i = 0; i < n; i++)
        {
            var index = _next++;
            _acceptedAt[index] = now;
            var task = new TaskInfo
            {
                TaskId = _prefix + index.ToString(CultureInfo.InvariantCulture),
                Name = "load",
                AgentId = offer.AgentId,
                Container = new ContainerInfo { Type = ContainerInfo.Types.Type.Mock },
                Labels = { ["mock.run_ms"] = runMs },
            };
            task.Resources.AddRange(TaskResources);
            tasks.Add(task);
        }
        _ = Call(_client.LaunchAsync(offer, tasks, refuseSeconds: _next >= _total ? 3600 : 0, ct));
        return n;
    }

    private async Task Call(Task call)
    {
        try
        {
            await call.ConfigureAwait(false);
        }
        catch (Exception)
        {
            Interlocked.Increment(ref FailedCalls);
        }
    }

    private void OnUpdate(Sched.V1.TaskStatus status)
    {
        Updates++;
        if (status.Uuid.Length > 0)
        {
            _acks.Writer.TryWrite(status);
        }
        var id = status.TaskId;
        if (!id.StartsWith(_prefix, StringComparison.Ordinal) || !int.TryParse(id.AsSpan(_prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var index) || index >= _total)
        {
            return;
        }
        var now = Stopwatch.GetTimestamp();
        if (status.State == TaskState.TaskRunning && _state[index] == 0)
        {
            _state[index] = 1;
            _latencyMs[index] = Stopwatch.GetElapsedTime(_acceptedAt[index], now).TotalMilliseconds;
            LastRunningAt = now;
            if (Interlocked.Increment(ref _running) == _total)
            {
                _allRunning.TrySetResult();
            }
        }
        else if (TaskStates.IsTerminal(status.State) && _state[index] == 2)
        {
            if (status.Uuid != _terminalUuid[index])
            {
                Interlocked.Increment(ref _duplicateTerminals);
            }
        }
        else if (TaskStates.IsTerminal(status.State))
        {
            _terminalUuid[index] = status.Uuid;
            if (status.State != TaskState.TaskFinished)
            {
                Interlocked.Increment(ref _notFinished);
            }
            if (status.State != TaskState.TaskFinished && status.State != TaskState.TaskKilled)
            {
                Failed++;
                FirstFailure ??= $"{status.State} {status.Reason} ({status.Source}): {status.Message}";
            }
            if (_state[index] == 0)
            {
                _latencyMs[index] = double.NaN;
            }
            _state[index] = 2;
            LastTerminalAt = now;
            if (Interlocked.Increment(ref _terminal) == _total)
            {
                _allTerminal.TrySetResult();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _client.DisposeAsync();
        if (_loop is not null)
        {
            await _loop.WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { }, TaskScheduler.Default);
        }
        if (_pacer is not null)
        {
            await _pacer.WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { }, TaskScheduler.Default);
        }
        if (_ackLoop is not null)
        {
            await _ackLoop.WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { }, TaskScheduler.Default);
        }
        _stop.Dispose();
    }
}
