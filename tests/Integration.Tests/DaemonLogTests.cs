using System.Text.RegularExpressions;
using Scheduler.Cli.Cluster;
using Xunit;
using Xunit.Abstractions;

namespace Scheduler.Integration.Tests;

/// <summary>What the master and agent daemons write to their logs.</summary>
public sealed partial class DaemonLogTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Master_and_agent_log_lines_carry_timestamps_and_the_hosts_start_and_stop_lines_appear_once()
    {
        var dir = Directory.CreateTempSubdirectory("daemon-log-").FullName;
        var masterLog = Path.Combine(dir, "master.log");
        var agentLog = Path.Combine(dir, "agent.log");
        DaemonProcess? master = null;
        DaemonProcess? agent = null;
        try
        {
            master = DaemonProcess.Start("master", ["master", "run", "--listen", "127.0.0.1:0", "--work-dir", Path.Combine(dir, "m"), "--insecure-allow-anonymous"], masterLog, command: Schedctl.Command);
            var address = await master.WaitForAsync(master.Listening, "its address", TimeSpan.FromSeconds(60), CancellationToken.None);
            agent = DaemonProcess.Start("agent", ["agent", "run", "--master", address, "--work-dir", Path.Combine(dir, "a"), "--isolation", "none", "--resources", "cpus:1;mem:128"], agentLog, command: Schedctl.Command);
            await agent.WaitForAsync(agent.Registered, "registration", TimeSpan.FromSeconds(60), CancellationToken.None);
            await AgentTeardown.StopAsync(agent, Path.Combine(dir, "a"), TimeSpan.FromSeconds(10));
            agent = null;
            await master.StopAsync(TimeSpan.FromSeconds(10));

            foreach (var (name, path) in new[] { ("master", masterLog), ("agent", agentLog) })
            {
                var lines = (await File.ReadAllLinesAsync(path)).Where(l => l.Length > 0).ToList();
                output.WriteLine($"--- {name}\n{string.Join("\n", lines)}");
                // The lines the CLI parses (listening on, registered as) go to stdout without a
                // timestamp; every log line has one.
                var logLines = lines.Where(l => !PlainLine().IsMatch(l)).ToList();
                Assert.NotEmpty(logLines);
                Assert.All(logLines, l => Assert.Matches(Timestamped(), l));
                Assert.True(lines.Count(l => l.Contains("Application is shutting down", StringComparison.Ordinal)) <= 1, $"{name}: the host's stop line appears more than once");
                Assert.True(lines.Count(l => l.Contains("Application started", StringComparison.Ordinal)) <= 1, $"{name}: the host's start line appears more than once");
            }
        }
        finally
        {
            if (agent is not null)
            {
                await AgentTeardown.StopAsync(agent, Path.Combine(dir, "a"), TimeSpan.FromSeconds(5));
            }
            if (master is not null)
            {
                await master.DisposeAsync();
            }
            Directory.Delete(dir, recursive: true);
        }
    }

    [GeneratedRegex(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (info|warn|fail|crit|dbug|trce) ")]
    private static partial Regex Timestamped();

    [GeneratedRegex(@"^(master listening on|agent listening on|agent registered as|agent metrics on) ")]
    private static partial Regex PlainLine();
}
