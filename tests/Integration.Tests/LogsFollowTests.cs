using System.Diagnostics;
using Sched.V1;
using Xunit;

namespace Scheduler.Integration.Tests;

/// <summary><c>schedctl logs TASK --follow</c> as a user runs it.</summary>
public sealed class LogsFollowTests(SharedCluster cluster) : IClassFixture<SharedCluster>
{
    [Fact]
    public async Task Logs_follow_prints_everything_and_ends_when_the_task_ends()
    {
        var name = "follow" + Guid.NewGuid().ToString("N")[..6];
        var gate = Path.Combine(Path.GetTempPath(), name + ".go");
        // The task writes a line, waits for the test's go-ahead, then writes two more and ends.
        var run = Schedctl.RunAsync(TimeSpan.FromSeconds(120), "--master", cluster.MasterAddress, "run", "--name", name, "--",
            "sh", "-c", $"echo one; while [ ! -e {gate} ]; do sleep 0.1; done; echo two; echo three");
        Process? logs = null;
        try
        {
            TaskRecord? task = null;
            await Poll.UntilAsync(async () =>
            {
                var tasks = await Schedctl.RunAsync(TimeSpan.FromSeconds(30), "--master", cluster.MasterAddress, "tasks", "--json");
                task = tasks.ExitCode == 0
                    ? Google.Protobuf.JsonParser.Default.Parse<GetTasksResponse>(tasks.Stdout).Tasks.FirstOrDefault(t => t.Name == name && t.State == TaskState.TaskRunning)
                    : null;
                return task is not null;
            }, TimeSpan.FromSeconds(60), "the task to run", TimeSpan.FromMilliseconds(100));

            var info = new ProcessStartInfo(Schedctl.Command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in (string[])[Schedctl.Dll, "--master", cluster.MasterAddress, "logs", task!.TaskId, "--follow"])
            {
                info.ArgumentList.Add(a);
            }
            logs = Process.Start(info)!;
            var stdout = new List<string>();
            var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            logs.OutputDataReceived += (_, e) =>
            {
                if (e.Data is { } line)
                {
                    lock (stdout)
                    {
                        stdout.Add(line);
                    }
                    first.TrySetResult();
                }
            };
            var stderr = logs.StandardError.ReadToEndAsync();
            logs.BeginOutputReadLine();
            await first.Task.WaitAsync(TimeSpan.FromSeconds(60));

            // Following now; let the task finish. logs must end by itself with every line.
            await File.WriteAllTextAsync(gate, "");
            using (var wait = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
            {
                try
                {
                    await logs.WaitForExitAsync(wait.Token);
                }
                catch (OperationCanceledException)
                {
                    Assert.Fail($"schedctl logs --follow did not end within 60 s of the task's end; printed: {string.Join("|", stdout)}");
                }
            }
            Assert.True(logs.ExitCode == 0, await stderr);
            Assert.Equal(["one", "two", "three"], stdout);
            Assert.Equal(0, (await run).ExitCode);
        }
        finally
        {
            await File.WriteAllTextAsync(gate, "");
            if (logs is { HasExited: false })
            {
                logs.Kill(entireProcessTree: true);
            }
            logs?.Dispose();
            await run.ContinueWith(_ => { }, TaskScheduler.Default);
            File.Delete(gate);
        }
    }
}
