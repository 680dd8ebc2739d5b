using System.Globalization;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Sched.V1;
using Scheduler.Channels;
using Scheduler.Channels.Tls;
using Scheduler.Cli.Cluster;
using Scheduler.LinkClient;
using Scheduler.Protocol;
using Xunit;

namespace Scheduler.Integration.Tests;

/// <summary>
/// A master and an agent started with <c>--tls-cert --tls-key --tls-ca</c> (real processes, a CA
/// generated here): who gets in over mutual TLS and who does not.
/// </summary>
public sealed class TlsClusterTests : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly ClusterFixture _cluster = new();
    private readonly CertificateIssuer _ca = CertificateIssuer.Create("test cluster CA", DateTimeOffset.UtcNow, TimeSpan.FromDays(1));
    private string _tlsDir = "";

    private string CaPath => Path.Combine(_tlsDir, "ca.pem");

    public async Task InitializeAsync()
    {
        _tlsDir = Path.Combine(_cluster.WorkDir, "tls");
        _ca.WriteAuthority(CaPath);
        Issue("master", _ca.IssueForLoopback("master"));
        Issue("agent", _ca.IssueForLoopback("agent-a"));
        await _cluster.StartMasterAsync(Flags("master"));
        await _cluster.StartAgentAsync(ClusterFixture.AgentResources, Flags("agent"));
    }

    public async Task DisposeAsync()
    {
        await _cluster.DisposeAsync();
        _ca.Dispose();
    }

    [Fact]
    public async Task An_agent_with_a_certificate_from_the_CA_registers_and_clients_trusting_the_CA_see_it()
    {
        using var channel = GrpcChannels.ForAddress(_cluster.MasterAddress, new GrpcChannelSettings { Tls = ClientTls.FromFiles(CaPath) });
        var agents = await channel.AsyncUnaryCall(OperatorMethods.GetAgents, new GetAgentsRequest(), new CallOptions(deadline: DateTime.UtcNow.Add(Wait))).ResponseAsync;
        var agent = Assert.Single(agents.Agents);
        Assert.Equal(_cluster.Agents[0].AgentId, agent.Info.Id);

        // The CLI: --tls-ca, or SCHED_TLS_CA.
        var listed = await Schedctl.RunAsync(Wait, "agents", "--master", _cluster.MasterAddress, "--tls-ca", CaPath);
        Assert.True(listed.ExitCode == 0, listed.ToString());
        Assert.Contains(agent.Info.Id, listed.Stdout, StringComparison.Ordinal);
        var fromEnvironment = await RunWithCaVariableAsync("agents", "--master", _cluster.MasterAddress);
        Assert.True(fromEnvironment.ExitCode == 0, fromEnvironment.ToString());
        Assert.Contains(agent.Info.Id, fromEnvironment.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_plaintext_client_is_refused()
    {
        using var plaintext = GrpcChannels.ForAddress(_cluster.MasterAddress);
        var e = await Assert.ThrowsAsync<RpcException>(() => plaintext.AsyncUnaryCall(OperatorMethods.GetAgents, new GetAgentsRequest(), new CallOptions(deadline: DateTime.UtcNow.Add(Wait))).ResponseAsync);
        Assert.NotEqual(StatusCode.OK, e.StatusCode);
        var cli = await Schedctl.RunAsync(Wait, "agents", "--master", _cluster.MasterAddress);
        Assert.NotEqual(0, cli.ExitCode);
    }

    [Fact]
    public async Task A_client_certificate_from_another_CA_or_expired_is_refused()
    {
        using var other = CertificateIssuer.Create("another CA", DateTimeOffset.UtcNow, TimeSpan.FromDays(1));
        Issue("intruder", other.IssueForLoopback("agent-a"));
        var now = DateTimeOffset.UtcNow;
        Issue("expired", _ca.Issue("agent-a", ["localhost"], [IPAddress.Loopback], now.AddHours(-2), now.AddMinutes(-1)));
        foreach (var name in new[] { "intruder", "expired" })
        {
            var cli = await Schedctl.RunAsync(Wait, "agents", "--master", _cluster.MasterAddress, "--tls-ca", CaPath, "--tls-cert", Cert(name), "--tls-key", Key(name));
            Assert.True(cli.ExitCode != 0, $"{name}: {cli}");
        }
        // The same CLI with a certificate the CA issued gets in.
        var holder = await Schedctl.RunAsync(Wait, "agents", "--master", _cluster.MasterAddress, "--tls-ca", CaPath, "--tls-cert", Cert("agent"), "--tls-key", Key("agent"));
        Assert.True(holder.ExitCode == 0, holder.ToString());
    }

    [Fact]
    public async Task A_link_without_a_client_certificate_cannot_register_as_an_agent()
    {
        using var channel = LinkChannels.ForAddress(_cluster.MasterAddress, tls: ClientTls.FromFiles(CaPath));
        using var call = channel.AsyncDuplexStreamingCall(AgentLinkMethods.Connect, new CallOptions(deadline: DateTime.UtcNow.Add(Wait)));
        var info = new AgentInfo { Hostname = "impostor", Address = "127.0.0.1:1" };
        info.Resources.Add(new Resource { Name = "cpus", Scalar = 64 });
        await call.RequestStream.WriteAsync(new AgentMessage { Register = new AgentMessage.Types.Register { AgentInfo = info } });
        var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext());
        Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
        Assert.Contains("--tls-cert", e.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_agent_holding_a_certificate_from_another_CA_does_not_register()
    {
        using var other = CertificateIssuer.Create("another CA", DateTimeOffset.UtcNow, TimeSpan.FromDays(1));
        Issue("intruder", other.IssueForLoopback("agent-b"));
        var dir = Path.Combine(_cluster.WorkDir, "intruder");
        var log = Path.Combine(_cluster.LogDir, "intruder-agent.log");
        var intruder = DaemonProcess.Start("intruder", [
            "agent", "run", "--master", _cluster.MasterAddress, "--listen", "127.0.0.1:0", "--work-dir", dir,
            "--resources", ClusterFixture.AgentResources, "--watch-parent", Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
            "--tls-cert", Cert("intruder"), "--tls-key", Key("intruder"), "--tls-ca", CaPath,
        ], log, command: Schedctl.Command);
        try
        {
            await Poll.UntilAsync(() => intruder.RecentOutput.Contains("link to master", StringComparison.Ordinal), Wait, "the agent to report its failed link");
            Assert.False(intruder.Registered.IsCompleted, intruder.RecentOutput);
            using var channel = GrpcChannels.ForAddress(_cluster.MasterAddress, new GrpcChannelSettings { Tls = ClientTls.FromFiles(CaPath) });
            var agents = await channel.AsyncUnaryCall(OperatorMethods.GetAgents, new GetAgentsRequest(), new CallOptions(deadline: DateTime.UtcNow.Add(Wait))).ResponseAsync;
            Assert.Single(agents.Agents);
        }
        finally
        {
            await AgentTeardown.StopAsync(intruder, dir, TimeSpan.FromSeconds(5));
        }
    }

    [Fact]
    public async Task Daemon_tls_flags_that_do_not_go_together_are_refused_before_starting()
    {
        var master = await Schedctl.RunAsync(Wait, "master", "run", "--listen", "127.0.0.1:0", "--work-dir", Path.Combine(_cluster.WorkDir, "m-bad"), "--tls-cert", Cert("master"), "--tls-key", Key("master"));
        Assert.Equal(2, master.ExitCode);
        Assert.Contains("missing --tls-ca", master.Stderr, StringComparison.Ordinal);
        var agent = await Schedctl.RunAsync(Wait, "agent", "run", "--master", _cluster.MasterAddress, "--work-dir", Path.Combine(_cluster.WorkDir, "a-bad"), "--tls-cert", Cert("agent"), "--tls-key", Path.Combine(_tlsDir, "absent.key"), "--tls-ca", CaPath);
        Assert.Equal(2, agent.ExitCode);
        Assert.Contains("absent.key does not exist", agent.Stderr, StringComparison.Ordinal);
    }

    private string Cert(string name) => Path.Combine(_tlsDir, name + ".pem");

    private string Key(string name) => Path.Combine(_tlsDir, name + ".key");

    private string[] Flags(string name) => ["--tls-cert", Cert(name), "--tls-key", Key(name), "--tls-ca", CaPath];

    private void Issue(string name, X509Certificate2 certificate)
    {
        using (certificate)
        {
            CertificateIssuer.WritePem(certificate, Cert(name), Key(name));
        }
    }

    private Task<CliResult> RunWithCaVariableAsync(params string[] args)
    {
        var info = new System.Diagnostics.ProcessStartInfo(Schedctl.Command[0]);
        info.ArgumentList.Add(Schedctl.Command[1]);
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        info.Environment["SCHED_TLS_CA"] = CaPath;
        info.Environment.Remove("SCHED_MASTER");
        return Schedctl.RunProcessAsync(info, Wait);
    }
}
