using System.CommandLine;
using Sched.V1;
using Scheduler.FrameworkSdk;
using Scheduler.Protocol;
using Grpc.Core;

namespace Scheduler.Cli.Commands;

/// <summary><c>schedctl logs TASK [--stderr] [--follow]</c>: a task's stdout (or stderr) from its sandbox.</summary>
public static class LogsCommand
{
    private static readonly Argument<string> TaskId = new("task") { Description = "The task id." };
    private static readonly Option<bool> Stderr = new("--stderr") { Description = "Show stderr instead of stdout." };
    private static readonly Option<bool> Follow = new("--follow", "-f") { Description = "Keep printing as the task writes, until it ends (or Ctrl-C)." };
    private static readonly Option<string?> Framework = new("--framework") { Description = "The task's framework id (when several frameworks use the same task id)." };

    public static Command Create()
    {
        var command = new Command("logs", "Print a task's stdout (or --stderr); --json prints one JSON object per chunk: task_id, framework_id, agent_id, file, offset, data.");
        command.Arguments.Add(TaskId);
        command.Options.Add(Stderr);
        command.Options.Add(Follow);
        command.Options.Add(Framework);
        command.SetAction((p, ct) => ClusterCommands.RunAsync(p, RunAsync, ct));
        return command;
    }

    private static Task<int> RunAsync(ClusterCommands.Context c) =>
        PrintAsync(c, c.Parse.GetValue(TaskId)!, c.Parse.GetValue(Framework), c.Parse.GetValue(Stderr), c.Parse.GetValue(Follow));

    /// <summary>Prints a task's stdout or stderr (following it until it ends with <paramref name="follow"/>).</summary>
    internal static async Task<int> PrintAsync(ClusterCommands.Context c, string taskId, string? frameworkId, bool stderr, bool follow)
    {
        var task = await FindTaskAsync(c.Connection, taskId, frameworkId, c.Cancellation);
        var agents = await Pages.AllAsync(new GetAgentsRequest(), r => c.Connection.CallAsync(OperatorMethods.GetAgents, r, c.Cancellation));
        var agent = agents.Agents.FirstOrDefault(a => a.Info.Id == task.AgentId)
            ?? throw new CliException($"task {taskId} ran on agent {task.AgentId}, which the master no longer knows; its sandbox is out of reach");
        if (agent.Status != AgentStatus.AgentActive && agent.Status != AgentStatus.AgentDraining)
        {
            throw new CliException($"agent {agent.Info.Id} ({agent.Info.Address}) of task {taskId} is {agent.Status}; cannot read its sandbox");
        }
        var path = SandboxFiles.PathOf(task.FrameworkId, task.TaskId, stderr ? "stderr" : "stdout");
        using var files = new SandboxFiles(agent.Info.Address, c.Connection.Settings);
        using var stdout = Console.OpenStandardOutput();
        Stream destination = c.Json
            ? new JsonChunkStream(c.Out, task, Path.GetFileName(path))
            : ReferenceEquals(c.Out, Console.Out) ? stdout : new WriterStream(c.Out);
        try
        {
            long offset = 0;
            if (follow && !task.State.IsTerminal())
            {
                // Follow until the task ends, then print what it wrote last: the agent reports the
                // end only after the task's process has exited, so its output is complete by then.
                using var ended = CancellationTokenSource.CreateLinkedTokenSource(c.Cancellation);
                var watch = WaitUntilTerminalAsync(c.Connection, task, ended);
                offset = await files.FollowAsync(path, 0, destination, ended.Token);
                await ended.CancelAsync();
                await watch;
                c.Cancellation.ThrowIfCancellationRequested();
            }
            await files.CopyToEndAsync(path, offset, destination, c.Cancellation);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            throw new CliException($"no {Path.GetFileName(path)} for task {taskId} on agent {agent.Info.Address} (the sandbox may have been garbage-collected)");
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
        {
            throw new CliException($"cannot reach agent {agent.Info.Address} of task {taskId}: {e.Status.Detail}");
        }
        return 0;
    }

    /// <summary>Cancels <paramref name="ended"/> once the master reports the task terminal (or
    /// gone); returns quietly when <paramref name="ended"/> is cancelled by others.</summary>
    private static async Task WaitUntilTerminalAsync(MasterConnection connection, TaskRecord task, CancellationTokenSource ended)
    {
        try
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(500));
            while (await timer.WaitForNextTickAsync(ended.Token))
            {
                GetTasksResponse response;
                try
                {
                    response = await Pages.AllAsync(new GetTasksRequest { TaskId = task.TaskId, FrameworkId = task.FrameworkId, IncludeCompleted = true }, r => connection.CallAsync(OperatorMethods.GetTasks, r, ended.Token));
                }
                catch (RpcException) when (!ended.IsCancellationRequested)
                {
                    continue; // the master is briefly out of reach (a failover): ask again
                }
                var latest = response.Tasks.LastOrDefault(t => t.TaskId == task.TaskId);
                if (latest is null || latest.State.IsTerminal())
                {
                    await ended.CancelAsync();
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (ended.IsCancellationRequested)
        {
        }
        catch (RpcException) when (ended.IsCancellationRequested)
        {
        }
    }

    internal static async Task<TaskRecord> FindTaskAsync(MasterConnection connection, string taskId, string? frameworkId, CancellationToken ct)
    {
        var response = await Pages.AllAsync(new GetTasksRequest { TaskId = taskId, FrameworkId = frameworkId ?? "", IncludeCompleted = true }, r => connection.CallAsync(OperatorMethods.GetTasks, r, ct));
        var matches = response.Tasks.Where(t => t.TaskId == taskId).ToList();
        return matches.Count switch
        {
            0 => throw new CliException($"no task '{taskId}' (see 'schedctl tasks --all')"),
            1 => matches[0],
            _ when matches.Select(t => t.FrameworkId).Distinct().Count() == 1 => matches[^1],
            _ => throw CliException.BadInput($"several frameworks have a task '{taskId}' ({string.Join(", ", matches.Select(t => t.FrameworkId).Distinct())}); add --framework ID"),
        };
    }

    /// <summary>--json: each chunk the file copy writes becomes one JSON line (UTF-8 decoded across
    /// chunk boundaries; offsets count bytes of the file).</summary>
    private sealed class JsonChunkStream(TextWriter writer, TaskRecord task, string file) : WriterStream(writer)
    {
        private readonly System.Text.Decoder _decoder = System.Text.Encoding.UTF8.GetDecoder();
        private long _offset;

        public override void Write(byte[] buffer, int offset, int count)
        {
            var chars = new char[_decoder.GetCharCount(buffer, offset, count)];
            _decoder.GetChars(buffer, offset, count, chars, 0);
            var line = new System.Text.Json.Nodes.JsonObject
            {
                ["task_id"] = task.TaskId,
                ["framework_id"] = task.FrameworkId,
                ["agent_id"] = task.AgentId,
                ["file"] = file,
                ["offset"] = _offset,
                ["data"] = new string(chars),
            };
            _offset += count;
            Writer.WriteLine(line.ToJsonString());
        }
    }

    /// <summary>Adapts a TextWriter (tests, redirected output) to the byte stream the file copy writes.</summary>
    private class WriterStream(TextWriter writer) : Stream
    {
        protected TextWriter Writer => writer;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush() => writer.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => writer.Write(System.Text.Encoding.UTF8.GetString(buffer, offset, count));
    }
}
