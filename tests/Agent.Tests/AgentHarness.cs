using Microsoft.Extensions.Logging.Abstractions;
using Sched.V1;
using Scheduler.Agent.Execution;
using Scheduler.Agent.Isolation;
using Scheduler.Agent.Native;
using Xunit;

namespace Scheduler.Agent.Tests;

/// <summary>
/// Drives an <see cref="AgentCore"/> directly on a temp work dir, standing in for the master: it
/// collects every status update the agent sends and acknowledges it. Supervisors are real
/// processes: the native sched-supervisor built with src/Agent and copied beside the tests.
/// </summary>
public sealed class AgentHarness : IAsyncDisposable
{
    private readonly List<(string Framework, TaskStatus Status)> _seen = [];
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _cts = new();
    private readonly SemaphoreSlim _changed = new(0);
    private Task _pump = Task.CompletedTask;

    public AgentHarness(string? workDir = null, string isolation = "auto", bool autoAck = true)
    {
        WorkDir = workDir ?? Directory.CreateTempSubdirectory("agent-test-").FullName;
        AutoAck = autoAck;
        Options = new AgentOptions { WorkDir = WorkDir, Isolation = isolation, DefaultKillGrace = TimeSpan.FromSeconds(1) };
        Directory.CreateDirectory(FetchDir);
        Options.FetchAllowDirs.Add(FetchDir);
        Isolation = isolation;
        Start();
    }

    public string WorkDir { get; }

    public AgentOptions Options { get; }

    /// <summary>The one directory this agent fetches <c>file://</c> URIs from.</summary>
    public string FetchDir => Path.Combine(WorkDir, "artifacts");

    public string Isolation { get; }

    public bool AutoAck { get; set; }

    public AgentCore Core { get; private set; } = null!;

    public static bool IsRoot => Libc.geteuid() == 0;

    public static FrameworkInfo Framework { get; } = new() { Id = "fw1", Name = "test", Roles = { "*" } };

    public IReadOnlyList<TaskStatus> Updates(string taskId)
    {
        lock (_lock)
        {
            return _seen.Where(s => s.Status.TaskId == taskId).Select(s => s.Status).ToList();
        }
    }

    /// <summary>Starts (or restarts) the agent core on the work dir and recovers its tasks.</summary>
    public void Start()
    {
        var isolator = Isolators.Create(Isolation, Isolators.ScopeFor(WorkDir));
        Core = new AgentCore(Options, isolator, ExecutorSet.CreateDefault(Options, isolator, TimeProvider.System), TimeProvider.System, NullLogger.Instance);
        Core.SetAgentId("agent-test");
        Core.Updates.HeadReady += () => _changed.Release();
        Core.Recover();
        _pump = Task.Run(PumpAsync);
    }

    /// <summary>Stops the agent abruptly: no task is touched (like a SIGKILLed agent).</summary>
    public async Task CrashAsync()
    {
        var old = Core;
        await old.DisposeAsync();
    }

    public void Launch(params TaskInfo[] tasks) => Core.Launch(Framework, tasks);

    /// <summary>Waits until the task's latest update has the state, failing on timeout.</summary>
    public async Task<TaskStatus> WaitForAsync(string taskId, Func<TaskStatus, bool> predicate, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            var match = Updates(taskId).FirstOrDefault(predicate);
            if (match is not null)
            {
                return match;
            }
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new Xunit.Sdk.XunitException($"task {taskId}: no matching update within the timeout; saw: {string.Join(", ", Updates(taskId).Select(u => $"{u.State}/{u.Reason}/{u.Message}"))}");
            }
            await _changed.WaitAsync(left < TimeSpan.FromMilliseconds(100) ? left : TimeSpan.FromMilliseconds(100));
        }
    }

    public Task<TaskStatus> WaitForStateAsync(string taskId, TaskState state, TimeSpan? timeout = null)
        => WaitForAsync(taskId, s => s.State == state, timeout);

    public Task<TaskStatus> WaitTerminalAsync(string taskId, TimeSpan? timeout = null)
        => WaitForAsync(taskId, s => Scheduler.Protocol.Tasks.TaskLifecycle.IsTerminal(s.State), timeout);

    /// <summary>Runs a helper program (umoci, skopeo, mkfs…) to completion; fails the test with its stderr when it fails.</summary>
    public static void Run(string program, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using var p = System.Diagnostics.Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        _ = stdout.Result;
        Assert.True(p.ExitCode == 0, $"{program} {string.Join(' ', args)} failed: {err}");
    }

    public static TaskInfo ShellTask(string id, string command, double cpus = 0.5, double mem = 64) => new()
    {
        TaskId = id,
        Name = id,
        AgentId = "agent-test",
        Command = new CommandInfo { Shell = true, Value = command },
        Container = new ContainerInfo { Type = ContainerInfo.Types.Type.Process },
        Resources = { new Resource { Name = "cpus", Scalar = cpus }, new Resource { Name = "mem", Scalar = mem } },
    };

    public async ValueTask DisposeAsync()
    {
        foreach (var t in Core.Tasks.Where(t => !t.Ended).ToList())
        {
            await Core.KillAsync(t.Framework.Id, t.Info.TaskId, new KillPolicy { GracePeriodSeconds = 0.1 }, TaskStatus.Types.Reason.KilledByOperator);
        }
        foreach (var t in Core.Tasks.ToList())
        {
            try
            {
                await WaitTerminalAsync(t.Info.TaskId, TimeSpan.FromSeconds(10));
            }
            catch (Xunit.Sdk.XunitException)
            {
            }
        }
        // The pump collects the updates awaited above: stop it only now.
        await _cts.CancelAsync();
        await Core.DisposeAsync();
        try
        {
            await _pump;
        }
        catch (OperationCanceledException)
        {
        }
        Core.Isolator.RemoveStale(new HashSet<string>());
        Core.Isolator.RemoveScopeIfEmpty();
        try
        {
            Directory.Delete(WorkDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private async Task PumpAsync()
    {
        var core = Core;
        while (!_cts.IsCancellationRequested)
        {
            foreach (var update in core.Updates.TakeDue())
            {
                lock (_lock)
                {
                    if (!_seen.Any(s => s.Status.Uuid == update.Status.Uuid))
                    {
                        _seen.Add((update.FrameworkId, update.Status));
                    }
                }
                if (AutoAck)
                {
                    core.Acknowledge(update.FrameworkId, update.Status.TaskId, update.Status.Uuid);
                }
                _changed.Release();
            }
            try
            {
                await Task.Delay(20, _cts.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            if (!ReferenceEquals(core, Core))
            {
                return;
            }
        }
    }
}
