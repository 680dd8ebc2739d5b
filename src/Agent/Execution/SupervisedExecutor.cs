using Sched.V1;
using Scheduler.Agent.Isolation;
using Scheduler.Agent.Supervision;

namespace Scheduler.Agent.Execution;

/// <summary>
/// The lifecycle shared by executors whose tasks run under a per-task supervisor process (process
/// and OCI): waiting reads the supervisor's recorded exit, kills go through the supervisor,
/// recovery re-adopts a live supervisor, statistics and clean-up come from the task's cgroups.
/// Subclasses say how a task is started.
/// </summary>
public abstract class SupervisedExecutor(IIsolator isolator, SupervisorLauncher launcher) : IExecutor
{
    protected IIsolator Isolator { get; } = isolator;

    protected SupervisorLauncher Launcher { get; } = launcher;

    public abstract string Name { get; }

    public abstract ExecutorCapabilities Capabilities { get; }

    public abstract Task<TaskHandle> StartAsync(TaskLaunch launch, CancellationToken cancellationToken);

    public async Task<TaskExit> WaitAsync(TaskHandle handle, CancellationToken cancellationToken)
        => SupervisorLauncher.ToExit(await Launcher.WaitAsync(handle, cancellationToken), handle.MemLimitMiB);

    public Task KillAsync(TaskHandle handle, TimeSpan grace)
    {
        Launcher.Kill(handle, grace);
        return Task.CompletedTask;
    }

    public TaskHandle? Recover(TaskHandle checkpointed) => SupervisorLauncher.CanRecover(checkpointed) ? checkpointed : null;

    public ResourceStatistics? Stats(TaskHandle handle) => Isolator.Open(handle.ContainerId)?.Statistics();

    public void Cleanup(TaskHandle handle)
    {
        // The supervisor removes the cgroups when the task ends; this catches a supervisor that died.
        Isolator.Open(handle.ContainerId)?.Destroy();
        handle.Supervisor?.Dispose();
        try
        {
            Directory.Delete(handle.RunDir, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
