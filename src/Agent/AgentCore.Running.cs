using Microsoft.Extensions.Logging;
using Sched.V1;
using Scheduler.Agent.Checkpoint;
using Scheduler.Agent.Execution;
using Scheduler.Agent.Native;
using Scheduler.Agent.StatusUpdates;
using Scheduler.Agent.Telemetry;

namespace Scheduler.Agent;

public sealed partial class AgentCore
{
    /// <summary>
    /// Re-adopts the tasks of a previous agent on this work dir: live supervisors are watched
    /// again; tasks that ended meanwhile are reported with their recorded exit; after a host
    /// reboot every old task is reported TASK_GONE (REASON_AGENT_REBOOTED). Stale cgroups are removed.
    /// </summary>
    public void Recover()
    {
        var bootId = ProcFs.BootId();
        var rebooted = _store.BootId.Length > 0 && _store.BootId != bootId;
        _store.BootId = bootId;
        var keep = new HashSet<string>(StringComparer.Ordinal);
        foreach (var checkpoint in _store.LoadAll())
        {
            var framework = checkpoint.Framework();
            var info = checkpoint.Task();
            var task = new RunningTask(framework, info, checkpoint.Handle.ContainerId, ExecutorFor(info))
            {
                KillReason = checkpoint.KillReason is { } r ? (TaskStatus.Types.Reason)r : null,
                Ended = checkpoint.Ended,
            };
            if (!_tasks.TryAdd((framework.Id, info.TaskId), task))
            {
                continue;
            }
            if (checkpoint.Ended)
            {
                // The terminal update is in the queue; the task stays until it is acknowledged.
                if (Updates.Pending(framework.Id, info.TaskId).Count == 0)
                {
                    _tasks.TryRemove((framework.Id, info.TaskId), out _);
                    _store.Delete(task.ContainerId);
                }
                continue;
            }
            if (rebooted || (checkpoint.Handle.BootId.Length > 0 && checkpoint.Handle.BootId != bootId))
            {
                Finish(task, new TaskExit(TaskState.TaskGone, TaskStatus.Types.Reason.AgentRebooted,
                    "the agent's host rebooted; the task is gone"), cleanup: true);
                continue;
            }
            var handle = checkpoint.Handle.SupervisorPid > 0 || checkpoint.Handle.Executor == "mock" ? task.Executor.Recover(checkpoint.Handle) : null;
            if (handle is null)
            {
                // A checkpointed supervisor pid means the task had started: its supervisor ended
                // (killed, or crashed) while the agent was down and left no result behind.
                Finish(task, checkpoint.Handle.SupervisorPid > 0
                    ? new TaskExit(TaskState.TaskFailed, TaskStatus.Types.Reason.ExecutorTerminated,
                        $"the task's supervisor (pid {checkpoint.Handle.SupervisorPid}) vanished while the agent was down, without recording how the task ended (was it killed?); relaunch it")
                    : new TaskExit(TaskState.TaskFailed, TaskStatus.Types.Reason.AgentRestarted,
                        "the agent restarted while the task was starting and nothing of it was found; relaunch it"), cleanup: true);
                continue;
            }
            task.Handle = handle;
            keep.Add(task.ContainerId);
            AgentLog.Readopted(_log, info.TaskId, framework.Id, handle.SupervisorPid);
            Track(RunAsync(task, recovered: handle));
        }
        foreach (var stale in Isolator.RemoveStale(keep))
        {
            AgentLog.StaleContainerRemoved(_log, stale);
        }
    }

    private async Task RunAsync(RunningTask task, TaskHandle? recovered)
    {
        var ct = _stopping.Token;
        var frameworkId = task.Framework.Id;
        var taskId = task.Info.TaskId;
        TaskHandle handle;
        if (recovered is null)
        {
            var sandbox = task.SandboxDir(SandboxesDir);
            var runDir = Path.Combine(_store.MetaDir, "runs", task.ContainerId);
            try
            {
                Directory.CreateDirectory(sandbox);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Finish(task, new TaskExit(TaskState.TaskFailed, TaskStatus.Types.Reason.SandboxFailed, $"cannot create the sandbox {sandbox}: {e.Message}"), cleanup: false);
                return;
            }
            IReadOnlyList<VolumeMount> volumes;
            try
            {
                volumes = Volumes.Attach(task.Info, sandbox, link: task.Info.Container?.Type != ContainerInfo.Types.Type.Oci);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
            {
                Finish(task, new TaskExit(TaskState.TaskFailed, TaskStatus.Types.Reason.SandboxFailed, $"cannot attach the task's persistent volumes: {e.Message}"), cleanup: false);
                return;
            }
            Enqueue(frameworkId, taskId, TaskState.TaskStarting, TaskStatus.Types.Reason.Unspecified, "preparing the task");
            task.Handle = null;
            _store.Save(TaskCheckpoint.From(task.Framework, task.Info, new TaskHandle { Executor = task.Executor.Name, ContainerId = task.ContainerId, RunDir = runDir, SandboxDir = sandbox, BootId = ProcFs.BootId() }));
            try
            {
                if (task.Info.Command is { Uris.Count: > 0 } command && task.Executor.Name != "mock")
                {
                    await _fetcher.FetchAllAsync(command.Uris, sandbox, ct);
                }
                if (task.Info.Secrets.Count > 0 && task.Secrets.Count == 0)
                {
                    throw new TaskLaunchException(TaskStatus.Types.Reason.TaskInvalid, "the task uses secrets but the launch carried no values for them (the agent restarted before the task started?); launch it again");
                }
                try
                {
                    SecretFiles.Place(sandbox, task.Secrets);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new TaskLaunchException(TaskStatus.Types.Reason.SandboxFailed, e.Message);
                }
                var starting = _time.GetTimestamp();
                handle = await task.Executor.StartAsync(new TaskLaunch(task.Framework, task.Info, sandbox, runDir, task.ContainerId) { Volumes = volumes, Secrets = task.Secrets }, ct);
                Metrics?.Launched(task.Executor.Name, _time.GetElapsedTime(starting));
            }
            catch (TaskLaunchException e)
            {
                Finish(task, new TaskExit(e.State, e.Reason, e.Message), cleanup: false);
                TryDeleteDir(runDir);
                return;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                AgentLog.LaunchFailed(_log, taskId, e);
                Finish(task, new TaskExit(TaskState.TaskFailed, TaskStatus.Types.Reason.ContainerLaunchFailed, "cannot start the task: " + e.Message), cleanup: false);
                TryDeleteDir(runDir);
                return;
            }
            task.Handle = handle;
            SaveCheckpoint(task);
            Enqueue(frameworkId, taskId, TaskState.TaskRunning, TaskStatus.Types.Reason.Unspecified, "the task is running");
            if (task.KillReason is not null)
            {
                await task.Executor.KillAsync(handle, task.PendingKillGrace ?? _options.DefaultKillGrace);
            }
        }
        else
        {
            handle = recovered;
        }

        using var health = HealthChecking.Start(this, task, ct);
        TaskExit exit;
        try
        {
            exit = await task.Executor.WaitAsync(handle, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return;
        }
        Finish(task, exit, cleanup: true);
    }

    /// <summary>Records a task's end: its terminal update (kill reason applied) and clean-up.</summary>
    private void Finish(RunningTask task, TaskExit exit, bool cleanup)
    {
        if (task.Ended)
        {
            return;
        }
        var state = exit.State;
        var reason = exit.Reason;
        var message = exit.Message;
        if (task.KillReason is { } killReason && state is TaskState.TaskKilled or TaskState.TaskFinished or TaskState.TaskFailed
            && reason is not TaskStatus.Types.Reason.ContainerLimitationMemory)
        {
            if (killReason == TaskStatus.Types.Reason.TaskHealthCheckFailed)
            {
                state = TaskState.TaskFailed;
                message = "the task failed its health check and was killed";
            }
            else
            {
                state = TaskState.TaskKilled;
                message = exit.State == TaskState.TaskKilled ? "the task was killed" : message;
            }
            reason = killReason;
        }
        task.Ended = true;
        Metrics?.Ended(state, reason);
        try
        {
            SecretFiles.Remove(task.SandboxDir(SandboxesDir));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            AgentLog.CleanupFailed(_log, task.Info.TaskId, e);
        }
        Enqueue(task.Framework.Id, task.Info.TaskId, state, reason, message, exit.ExitCode, task.Healthy);
        if (task.Handle is { } handle)
        {
            SaveCheckpoint(task);
            if (cleanup)
            {
                try
                {
                    task.Executor.Cleanup(handle);
                }
                catch (Exception e)
                {
                    AgentLog.CleanupFailed(_log, task.Info.TaskId, e);
                }
            }
        }
        else
        {
            _store.Delete(task.ContainerId);
        }
        if (!_tasks.ContainsKey((task.Framework.Id, task.Info.TaskId)))
        {
            return;
        }
        if (Updates.Pending(task.Framework.Id, task.Info.TaskId).Count == 0)
        {
            _tasks.TryRemove((task.Framework.Id, task.Info.TaskId), out _);
            _store.Delete(task.ContainerId);
        }
    }

    private void SaveCheckpoint(RunningTask task)
    {
        if (task.Handle is null)
        {
            return;
        }
        var checkpoint = TaskCheckpoint.From(task.Framework, task.Info, task.Handle);
        checkpoint.Ended = task.Ended;
        checkpoint.KillReason = task.KillReason is { } r ? (int)r : null;
        _store.Save(checkpoint);
    }

    /// <summary>Queues an update for the master (new uuid, agent source).</summary>
    internal void Enqueue(string frameworkId, string taskId, TaskState state, TaskStatus.Types.Reason reason, string message, int? exitCode = null, bool? healthy = null)
    {
        var status = new TaskStatus
        {
            TaskId = taskId,
            AgentId = AgentId,
            FrameworkId = frameworkId,
            State = state,
            Reason = reason,
            Message = message,
            Source = TaskStatus.Types.Source.Agent,
            Uuid = Guid.NewGuid().ToString(),
            Timestamp = Now(),
        };
        if (exitCode is { } code)
        {
            status.ExitCode = code;
        }
        if (healthy is { } h)
        {
            status.Healthy = h;
        }
        Updates.Enqueue(frameworkId, status);
        if (Scheduler.Protocol.Tasks.TaskLifecycle.IsTerminal(state))
        {
            AgentLog.TaskEnded(_log, taskId, frameworkId, state, message);
        }
    }

    private static void TryDeleteDir(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
