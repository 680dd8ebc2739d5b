using System.Globalization;
using Scheduler.Cli.Cluster;

namespace Scheduler.Integration.Tests;

/// <summary>
/// Real master and agent processes (<c>dotnet schedctl.dll master run / agent run</c>) on loopback
/// with dynamic ports and short timeouts, in a temp work dir. Can SIGKILL and restart agents and
/// masters; every process's output goes to <c>logs/</c> in the test output directory. Disposal
/// kills every process it started (and task supervisors left in its work dir) and removes the
/// work dir.
/// </summary>
public class ClusterFixture : IAsyncDisposable
{
    /// <summary>Short timings so failure detection takes seconds, not minutes.</summary>
    public static readonly string[] FastMasterArgs =
    [
        "--heartbeat-interval", "0.5", "--agent-timeout", "2", "--framework-heartbeat-interval", "0.5",
        "--allocation-interval", "0.05", "--agent-reregister-timeout", "3",
    ];

    public const string AgentResources = "cpus:4;mem:4096;disk:4096;ports:[31000-31099]";

    private readonly List<Node> _masters = [];
    private readonly List<Node> _agents = [];
    private readonly string _logDir;
    private int _restarts;

    public ClusterFixture()
    {
        WorkDir = Path.Combine(Path.GetTempPath(), "sched-it-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(WorkDir);
        _logDir = Path.Combine(AppContext.BaseDirectory, "logs", $"{GetType().Name}-{DateTime.UtcNow:HHmmss}-{Guid.NewGuid().ToString("N")[..4]}");
        Directory.CreateDirectory(_logDir);
    }

    public string WorkDir { get; }

    public string LogDir => _logDir;

    public string MasterAddress => _masters[0].Address;

    public IReadOnlyList<Node> Agents => _agents;

    public static TimeSpan StartTimeout { get; } = TimeSpan.FromSeconds(60);

    public async Task<Node> StartMasterAsync(params string[] extraArgs)
    {
        var index = _masters.Count;
        var dir = Path.Combine(WorkDir, $"master{index}");
        var node = new Node($"master{index}", dir, port: 0, extraArgs);
        _masters.Add(node);
        await StartAsync(node, isMaster: true);
        return node;
    }

    public async Task<Node> StartAgentAsync(string resources = AgentResources, params string[] extraArgs)
    {
        var index = _agents.Count;
        var node = new Node($"agent{index}", Path.Combine(WorkDir, $"agent{index}"), port: 0, ["--resources", resources, "--status-retry", "0.5", .. extraArgs]);
        _agents.Add(node);
        await StartAsync(node, isMaster: false);
        return node;
    }

    /// <summary>SIGKILL (a crash): the process dies without any clean-up of its own.</summary>
    public static async Task KillAsync(Node node)
    {
        node.Process!.Kill();
        await node.Process.Exited.WaitAsync(TimeSpan.FromSeconds(10));
        await node.Process.DisposeAsync();
        node.Process = null;
    }

    /// <summary>Starts a killed node again with the same work dir (and, for agents, the same id).</summary>
    public Task RestartAsync(Node node) => StartAsync(node, isMaster: _masters.Contains(node));

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _agents)
        {
            await AgentTeardown.StopAsync(node.Process, node.WorkDir, TimeSpan.FromSeconds(5));
        }
        foreach (var node in _masters.Where(n => n.Process is not null))
        {
            await node.Process!.DisposeAsync();
        }
        try
        {
            Directory.Delete(WorkDir, recursive: true);
        }
        catch (IOException)
        {
        }
        GC.SuppressFinalize(this);
    }

    private async Task StartAsync(Node node, bool isMaster)
    {
        var log = Path.Combine(_logDir, $"{node.Name}-{Interlocked.Increment(ref _restarts)}.log");
        var parent = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        List<string> args = isMaster
            ? ["master", "run", "--listen", $"127.0.0.1:{node.Port}", "--work-dir", node.WorkDir, "--watch-parent", parent, "--insecure-allow-anonymous", .. FastMasterArgs, .. node.Args]
            : ["agent", "run", "--master", string.Join(",", _masters.Select(m => m.Address)), "--listen", "127.0.0.1:0", "--work-dir", node.WorkDir, "--watch-parent", parent, .. node.Args];
        node.Process = DaemonProcess.Start(node.Name, args, log, command: Schedctl.Command);
        node.Address = await node.Process.WaitForAsync(node.Process.Listening, "its listening address", StartTimeout, CancellationToken.None);
        if (isMaster)
        {
            // Restarted masters keep their port so agents and frameworks find them again.
            node.Port = int.Parse(node.Address[(node.Address.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture);
        }
        else
        {
            node.AgentId = await node.Process.WaitForAsync(node.Process.Registered, "its registration", StartTimeout, CancellationToken.None);
        }
    }

    /// <summary>One master or agent process (across restarts).</summary>
    public sealed class Node(string name, string workDir, int port, IReadOnlyList<string> args)
    {
        public string Name => name;

        public string WorkDir => workDir;

        public int Port { get; set; } = port;

        public IReadOnlyList<string> Args => args;

        public string Address { get; set; } = "";

        public string AgentId { get; set; } = "";

        public DaemonProcess? Process { get; set; }
    }
}

/// <summary>One master and two agents, shared by the tests of a class.</summary>
public sealed class SharedCluster : ClusterFixture, Xunit.IAsyncLifetime
{
    public async Task InitializeAsync()
    {
        await StartMasterAsync();
        await Task.WhenAll(StartAgentAsync(), StartAgentAsync());
    }

    Task Xunit.IAsyncLifetime.DisposeAsync() => DisposeAsync().AsTask();
}
