using System.Globalization;
using Sched.V1;

namespace Scheduler.Agent.Execution;

/// <summary>
/// The mock executor (CONTRACTS: container type MOCK): no process; behaviour from labels
/// <c>mock.run_ms</c> (0: finish at once; negative: until killed), <c>mock.exit_code</c>,
/// <c>mock.fail_start</c>, <c>mock.ignore_sigterm</c>. Goes through the same status path as the
/// real executors. Mock tasks do not survive an agent restart (reported lost on recovery).
/// </summary>
public sealed class MockExecutor(TimeProvider time) : IExecutor
{
    public string Name => "mock";

    public ExecutorCapabilities Capabilities { get; } = new(false, false, false);

    public Task<TaskHandle> StartAsync(TaskLaunch launch, CancellationToken cancellationToken)
    {
        var labels = launch.Task.Labels;
        if (Label(labels, "mock.fail_start") == "true")
        {
            throw new TaskLaunchException(TaskStatus.Types.Reason.ContainerLaunchFailed, "mock task failed to start (mock.fail_start=true)");
        }
        var runMs = long.TryParse(Label(labels, "mock.run_ms"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var r) ? r : 0;
        var exitCode = int.TryParse(Label(labels, "mock.exit_code"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var c) ? c : 0;
        var state = new MockState(Label(labels, "mock.ignore_sigterm") == "true");
        if (runMs >= 0)
        {
            state.Timer = time.CreateTimer(_ => state.End(Exited(exitCode)), null, TimeSpan.FromMilliseconds(runMs), Timeout.InfiniteTimeSpan);
        }
        return Task.FromResult(new TaskHandle { Executor = Name, ContainerId = launch.ContainerId, RunDir = launch.RunDir, SandboxDir = launch.SandboxDir, State = state });
    }

    public async Task<TaskExit> WaitAsync(TaskHandle handle, CancellationToken cancellationToken)
        => handle.State is MockState s ? await s.Exit.Task.WaitAsync(cancellationToken) : Lost();

    public Task KillAsync(TaskHandle handle, TimeSpan grace)
    {
        if (handle.State is MockState s)
        {
            var killed = new TaskExit(TaskState.TaskKilled, TaskStatus.Types.Reason.Unspecified, "killed", 137);
            if (s.IgnoreSigterm)
            {
                s.KillTimer ??= time.CreateTimer(_ => s.End(killed), null, grace, Timeout.InfiniteTimeSpan);
            }
            else
            {
                s.End(killed with { ExitCode = 143 });
            }
        }
        return Task.CompletedTask;
    }

    public TaskHandle? Recover(TaskHandle checkpointed)
    {
        checkpointed.State = new MockState(false);
        ((MockState)checkpointed.State).End(Lost());
        return checkpointed;
    }

    public ResourceStatistics? Stats(TaskHandle handle) => null;

    public void Cleanup(TaskHandle handle)
    {
        if (handle.State is MockState s)
        {
            s.Timer?.Dispose();
            s.KillTimer?.Dispose();
        }
    }

    private static TaskExit Exited(int code) => code == 0
        ? new TaskExit(TaskState.TaskFinished, TaskStatus.Types.Reason.Unspecified, "mock task finished", 0)
        : new TaskExit(TaskState.TaskFailed, TaskStatus.Types.Reason.CommandExitedNonzero, $"mock task exited with status {code}", code);

    private static TaskExit Lost() => new(TaskState.TaskFailed, TaskStatus.Types.Reason.AgentRestarted, "mock tasks do not survive an agent restart");

    private static string? Label(Google.Protobuf.Collections.MapField<string, string> labels, string key)
        => labels.TryGetValue(key, out var v) ? v : null;

    private sealed class MockState(bool ignoreSigterm)
    {
        public bool IgnoreSigterm { get; } = ignoreSigterm;

        public TaskCompletionSource<TaskExit> Exit { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ITimer? Timer { get; set; }

        public ITimer? KillTimer { get; set; }

        public void End(TaskExit exit) => Exit.TrySetResult(exit);
    }
}
