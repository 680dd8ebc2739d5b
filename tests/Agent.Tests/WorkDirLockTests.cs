using Xunit;

namespace Scheduler.Agent.Tests;

public class WorkDirLockTests
{
    [Fact]
    public void A_second_holder_of_a_work_dir_is_refused_with_the_pid_of_the_first_and_a_released_lock_can_be_taken_again()
    {
        var dir = Directory.CreateTempSubdirectory("agent-lock-").FullName;
        try
        {
            using (var first = WorkDirLock.Acquire(dir))
            {
                Assert.Equal($"{Environment.ProcessId}\n", ReadShared(first.Path));
                var e = Assert.Throws<WorkDirLockedException>(() => WorkDirLock.Acquire(dir));
                Assert.Contains($"pid {Environment.ProcessId}", e.Message, StringComparison.Ordinal);
                Assert.Contains("--work-dir", e.Message, StringComparison.Ordinal);
            }
            using var again = WorkDirLock.Acquire(dir);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task An_agent_started_on_a_work_dir_in_use_exits_at_once_with_code_2()
    {
        var dir = Directory.CreateTempSubdirectory("agent-lock-").FullName;
        try
        {
            using var held = WorkDirLock.Acquire(dir);
            var options = new AgentOptions { WorkDir = dir, Isolation = "none" };
            options.Masters.Add("127.0.0.1:1");
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var code = await AgentHost.RunAsync(options, timeout.Token);
            Assert.False(timeout.IsCancellationRequested, "the second agent ran instead of refusing the locked work dir");
            Assert.Equal(2, code);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string ReadShared(string path)
    {
        // Not File.ReadAllText: .NET takes a shared flock for reading, which the held lock refuses.
        using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("cat", [path]) { RedirectStandardOutput = true })!;
        var text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return text;
    }
}
