using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Sched.V1;
using Xunit;

namespace Scheduler.Agent.Tests;

/// <summary>Sandbox garbage collection by age and by disk pressure (a real tmpfs as the agent's
/// disk), never touching a running task's sandbox.</summary>
public class SandboxCollectorTests
{
    [Fact]
    public async Task Sandboxes_older_than_the_max_age_go_and_a_running_tasks_never_does()
    {
        await using var h = new AgentHarness(isolation: "none");
        h.Launch(AgentHarness.ShellTask("running", "exec sleep 1000"));
        await h.WaitForStateAsync("running", TaskState.TaskRunning);
        var now = DateTimeOffset.UtcNow;
        var old = MakeSandbox(h, "old", 1024, now.AddDays(-10));
        var young = MakeSandbox(h, "young", 1024, now.AddHours(-1));
        var running = Path.Combine(h.WorkDir, "sandboxes", "fw1", "running");
        Directory.SetLastWriteTimeUtc(running, now.AddDays(-30).UtcDateTime);

        h.Options.SandboxMaxAge = TimeSpan.FromDays(7);
        h.Options.SandboxDiskPressure = 1.0;
        var removed = new SandboxCollector(h.Core, h.Options, NullLogger.Instance).Collect(now);

        Assert.Equal([old], removed);
        Assert.False(Directory.Exists(old));
        Assert.True(Directory.Exists(young));
        Assert.True(Directory.Exists(running), "a running task's sandbox was collected");
    }

    [NeedsFact(Needs.Root)]
    public async Task Under_disk_pressure_the_oldest_terminated_sandboxes_go_first_until_below_the_threshold()
    {
        var mount = Directory.CreateTempSubdirectory("agent-gc-disk-").FullName;
        AgentHarness.Run("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mount);
        try
        {
            await using (var h = new AgentHarness(workDir: mount, isolation: "none"))
            {
                h.Launch(AgentHarness.ShellTask("running", "head -c 1048576 /dev/zero > blob && exec sleep 1000"));
                await h.WaitForStateAsync("running", TaskState.TaskRunning);
                var now = DateTimeOffset.UtcNow;
                var running = Path.Combine(h.WorkDir, "sandboxes", "fw1", "running");
                await Poll.UntilAsync(() => File.Exists(Path.Combine(running, "blob")) && new System.IO.FileInfo(Path.Combine(running, "blob")).Length == 1048576, TimeSpan.FromSeconds(20));
                Directory.SetLastWriteTimeUtc(running, now.AddDays(-3).UtcDateTime);
                var oldest = MakeSandbox(h, "oldest", 4 << 20, now.AddDays(-2));
                var middle = MakeSandbox(h, "middle", 4 << 20, now.AddDays(-1));
                var newest = MakeSandbox(h, "newest", 4 << 20, now.AddHours(-1));

                // ≈ 13 of 16 MiB used; above 60 % the oldest terminated sandbox goes, which is enough.
                h.Options.SandboxMaxAge = TimeSpan.FromDays(30);
                h.Options.SandboxDiskPressure = 0.6;
                var removed = new SandboxCollector(h.Core, h.Options, NullLogger.Instance).Collect(now);

                Assert.Equal([oldest], removed);
                Assert.True(Directory.Exists(middle) && Directory.Exists(newest), "more was removed than the pressure needed");
                Assert.True(Directory.Exists(running), "a running task's sandbox was collected");

                // Heavier pressure: every terminated sandbox goes, oldest first; the running one stays.
                h.Options.SandboxDiskPressure = 0.01;
                Assert.Equal([middle, newest], new SandboxCollector(h.Core, h.Options, NullLogger.Instance).Collect(now));
                Assert.True(Directory.Exists(running));
            }
        }
        finally
        {
            AgentHarness.Run("umount", mount);
            Directory.Delete(mount, recursive: true);
        }
    }

    private static string MakeSandbox(AgentHarness h, string task, int bytes, DateTimeOffset modified)
    {
        var dir = Path.Combine(h.WorkDir, "sandboxes", "fw1", task);
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, "stdout"), new byte[bytes]);
        Directory.SetLastWriteTimeUtc(dir, modified.UtcDateTime);
        return dir;
    }
}
