using System.Text.Json;
using Scheduler.Cli.Cluster;
using Xunit;

namespace Scheduler.Integration.Tests;

/// <summary><c>schedctl agent simulate</c>: N simulated agents against a real master, as an operator load-tests one.</summary>
public sealed class AgentSimulateTests
{
    [Fact]
    public async Task Simulated_agents_register_with_the_master_and_leave_on_sigterm()
    {
        await using var cluster = new ClusterFixture();
        var master = await cluster.StartMasterAsync();
        var registered = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var stopping = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var simulate = DaemonProcess.Start("simulate",
            ["agent", "simulate", "--master", master.Address, "--count", "25", "--hostname-prefix", "simtest-", "--resources", "cpus:2;mem:512"],
            Path.Combine(cluster.LogDir, "simulate.log"),
            onLine: (_, line) =>
            {
                if (line.Contains("simulated agents registered", StringComparison.Ordinal))
                {
                    registered.TrySetResult(line);
                }
                else if (line.StartsWith("stopping:", StringComparison.Ordinal))
                {
                    stopping.TrySetResult(line);
                }
            },
            command: Schedctl.Command);
        var line = await simulate.WaitForAsync(registered.Task, "its agents registered", ClusterFixture.StartTimeout, CancellationToken.None);
        Assert.Equal($"25 simulated agents registered with {master.Address}", line);

        var agents = await Schedctl.RunAsync(TimeSpan.FromSeconds(60), "--master", master.Address, "--json", "agents");
        Assert.Equal(0, agents.ExitCode);
        using var doc = JsonDocument.Parse(agents.Stdout);
        var hosts = doc.RootElement.GetProperty("agents").EnumerateArray()
            .Select(a => a.GetProperty("info").GetProperty("hostname").GetString()).ToList();
        Assert.Equal(25, hosts.Count(h => h is not null && h.StartsWith("simtest-", StringComparison.Ordinal)));
        Assert.Contains("simtest-0", hosts);
        Assert.All(doc.RootElement.GetProperty("agents").EnumerateArray(), a => Assert.Equal("AGENT_ACTIVE", a.GetProperty("status").GetString()));

        await simulate.StopAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(0, await simulate.Exited.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.StartsWith("stopping: 0 tasks launched", await stopping.Task.WaitAsync(TimeSpan.FromSeconds(5)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_simulate_options_are_one_line_and_exit_code_2()
    {
        var count = await Schedctl.RunAsync(TimeSpan.FromSeconds(60), "agent", "simulate", "--master", "127.0.0.1:1", "--count", "0");
        Assert.Equal(2, count.ExitCode);
        Assert.Contains("--count", count.Stderr, StringComparison.Ordinal);
        var resources = await Schedctl.RunAsync(TimeSpan.FromSeconds(60), "agent", "simulate", "--master", "127.0.0.1:1", "--count", "2", "--resources", "cpus:abc");
        Assert.Equal(2, resources.ExitCode);
        Assert.Contains("--resources", resources.Stderr, StringComparison.Ordinal);
    }
}
