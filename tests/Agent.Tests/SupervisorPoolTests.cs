using Scheduler.Agent.Supervision;
using Xunit;

namespace Scheduler.Agent.Tests;

/// <summary>Runs alone: it counts this process's idle pooled supervisors, which the agents of
/// other test classes would add to.</summary>
[CollectionDefinition("Supervisor pool", DisableParallelization = true)]
public sealed class SupervisorPoolCollection
{
}

/// <summary>Pre-started supervisors (<c>sched-supervisor --pool</c>).</summary>
[Collection("Supervisor pool")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class SupervisorPoolTests
{
    [Fact]
    public async Task Pooled_supervisors_run_tasks_and_end_when_the_launcher_is_disposed()
    {
        using var dir = new SupervisorTests.TempDir();
        var pooled = new List<int>();
        using (var launcher = new SupervisorLauncher(SupervisorLauncher.DefaultCommand(), poolSize: 2))
        {
            launcher.Prefill();
            await Poll.UntilAsync(() => IdlePooled().Count == 2, TimeSpan.FromSeconds(20));
            pooled.AddRange(IdlePooled());
            for (var i = 0; i < 3; i++)
            {
                var launch = SupervisorTests.Launch(dir.Path, $"pooled{i}");
                var handle = await launcher.StartAsync(launch, SupervisorTests.Spec(launch, "/bin/sh", "-c", $"echo run {i}"), "process", CancellationToken.None);
                var result = await launcher.WaitAsync(handle, CancellationToken.None);
                Assert.Equal(0, result?.ExitCode);
                Assert.Equal($"run {i}\n", await File.ReadAllTextAsync(Path.Combine(launch.SandboxDir, "stdout")));
                if (i == 0)
                {
                    Assert.Contains(handle.SupervisorPid, pooled); // the first launch took a pre-started one
                }
            }
            await Poll.UntilAsync(() => IdlePooled().Count == 2, TimeSpan.FromSeconds(20)); // refilled
            pooled.AddRange(IdlePooled());
        }
        // Disposed: idle supervisors see their stdin close and end.
        await Poll.UntilAsync(() => pooled.All(p => Native.ProcFs.Stat(p) is not { Alive: true }), TimeSpan.FromSeconds(20));
    }

    /// <summary>Idle pooled supervisors that are children of this process.</summary>
    private static List<int> IdlePooled()
    {
        var self = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var found = new List<int>();
        foreach (var d in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(d), out var pid))
            {
                continue;
            }
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(d, "cmdline"));
                var stat = File.ReadAllText(Path.Combine(d, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (cmdline.Contains("sched-supervisor\0--pool", StringComparison.Ordinal) && fields[1] == self && fields[0] != "Z")
                {
                    found.Add(pid);
                }
            }
            catch (IOException)
            {
            }
        }
        return found;
    }
}
