using System.Diagnostics;
using Sched.V1;
using Scheduler.Cli.Cluster;
using Scheduler.Protocol;
using Xunit;
using Xunit.Abstractions;

namespace Scheduler.Integration.Tests;

/// <summary>
/// A SIGSTOPped master still accepts TCP connections (the kernel completes the handshake), but
/// never answers. Agents and frameworks that try it must leave it within seconds and register with
/// the master that leads. Real master and agent processes on a real etcd.
/// </summary>
public sealed class FrozenMasterTests(ITestOutputHelper output)
{
    /// <summary>Registration timeout (5 s) plus a new leader's start and a loaded machine.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(25);

    [Fact]
    public async Task An_agent_and_a_framework_leave_a_frozen_master_and_register_with_the_leader()
    {
        await using var cluster = new ClusterFixture();
        await using var etcd = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 1, BaseDirectory = Path.Combine(cluster.WorkDir, "etcd") });
        var urls = string.Join(",", etcd.Endpoints.Select(e => "http://" + e));
        // The frozen master is listed first: agents (and the framework below) try it first.
        var frozen = await cluster.StartMasterAsync("--etcd", urls, "--lease-ttl", "2");
        var live = await cluster.StartMasterAsync("--etcd", urls, "--lease-ttl", "2");
        await MasterFailoverTests.WaitForLeaderAsync([frozen, live], exclude: null, TimeSpan.FromSeconds(20));

        DaemonProcess.Signal(frozen.Process!.Pid, 19); // SIGSTOP
        try
        {
            await MasterFailoverTests.WaitForLeaderAsync([live], exclude: frozen, TimeSpan.FromSeconds(20));

            var started = Stopwatch.StartNew();
            var agent = await cluster.StartAgentAsync().WaitAsync(Bound);
            output.WriteLine($"agent registered {started.Elapsed.TotalSeconds:0.0} s after start");
            using var probe = new MasterProbe(live.Address);
            var agents = (await probe.CallAsync(OperatorMethods.GetAgents, new GetAgentsRequest())).Agents;
            Assert.Contains(agents, a => a.Info.Id == agent.AgentId && a.Status == AgentStatus.AgentActive);

            started.Restart();
            await using var fw = new TestFramework($"{frozen.Address},{live.Address}", "it-frozen-master");
            var id = await fw.Client.WaitForSubscriptionAsync().WaitAsync(Bound);
            output.WriteLine($"framework subscribed {started.Elapsed.TotalSeconds:0.0} s after start");
            Assert.Equal(live.Address, id.Master.Address);
        }
        finally
        {
            DaemonProcess.Signal(frozen.Process!.Pid, 18); // SIGCONT, so that disposal ends it normally
        }
    }
}
