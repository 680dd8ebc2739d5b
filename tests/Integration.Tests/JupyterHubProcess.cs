using System.Net;
using System.Net.Sockets;
using Scheduler.Cli.Cluster;

namespace Scheduler.Integration.Tests;

/// <summary>
/// A real JupyterHub (Debian's <c>/usr/bin/jupyterhub</c>) on loopback ports with the dummy
/// authenticator and the scheduler's spawner, its database and pid files in one directory, so it
/// can be stopped and started again on the same state. It starts configurable-http-proxy itself;
/// a stop ends the hub (SIGTERM) and anything it started that outlives it (by parentage).
/// </summary>
public sealed class JupyterHubProcess : IAsyncDisposable
{
    public const string ApiToken = "e2e-spawner-test-token-5e0c2b";

    private readonly string _dir;
    private readonly string _packageDir;
    private readonly string _logDir;
    private readonly List<string> _lines = [];
    private DaemonProcess? _hub;
    private int _starts;

    public JupyterHubProcess(string dir, string packageDir, string logDir, string masterAddress, IEnumerable<string>? extraConfig = null)
    {
        _dir = dir;
        _packageDir = packageDir;
        _logDir = logDir;
        PublicPort = FreePort();
        HubPort = FreePort();
        ProxyApiPort = FreePort();
        ConfigFile = Path.Combine(dir, "jupyterhub_config.py");
        File.WriteAllLines(ConfigFile, Config(masterAddress).Concat(extraConfig ?? []));
    }

    public int PublicPort { get; }

    public int HubPort { get; }

    public int ProxyApiPort { get; }

    public string ConfigFile { get; }

    /// <summary>The proxy's address: what users reach.</summary>
    public Uri PublicUrl => new($"http://127.0.0.1:{PublicPort}/");

    /// <summary>Whether the hub printed a line containing <paramref name="text"/> since its last start.</summary>
    public bool Printed(string text)
    {
        lock (_lines)
        {
            return _lines.Any(l => l.Contains(text, StringComparison.Ordinal));
        }
    }

    /// <summary>Starts the hub and waits until it says it is running.</summary>
    public async Task StartAsync(TimeSpan timeout)
    {
        lock (_lines)
        {
            _lines.Clear();
        }
        var running = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        List<string> command = ["/usr/bin/env", "-C", _dir, "PYTHONPATH=" + _packageDir];
        if (JupyterHubEnvironment.ProxyNeedsNodePath)
        {
            command.Add("NODE_PATH=" + JupyterHubEnvironment.DebianNodePath);
        }
        command.Add("jupyterhub");
        var log = Path.Combine(_logDir, $"jupyterhub-{++_starts}.log");
        _hub = DaemonProcess.Start("jupyterhub", ["-f", ConfigFile], log, (_, line) =>
        {
            lock (_lines)
            {
                _lines.Add(line);
            }
            if (line.Contains("JupyterHub is now running at", StringComparison.Ordinal))
            {
                running.TrySetResult(line);
            }
        }, command);
        await _hub.WaitForAsync(running.Task, "'JupyterHub is now running'", timeout, CancellationToken.None);
    }

    /// <summary>Stops the hub as an operator would (SIGTERM); the hub stops its proxy. Whatever the
    /// hub started (the proxy, found by parentage while the hub still runs) and outlives it is
    /// killed by its identity (pid and start time).</summary>
    public async Task StopAsync()
    {
        if (_hub is null)
        {
            return;
        }
        var started = new HashSet<ProcessIdentity>();
        if (_hub.Identity is { } hub)
        {
            // Freezing takes the whole tree at once (a stopped process cannot fork); thaw it to stop it cleanly.
            started = ProcessTree.Freeze([hub]);
            ProcessTree.Signal(started, ProcessTree.SIGCONT);
        }
        await _hub.StopAsync(TimeSpan.FromSeconds(20));
        await _hub.DisposeAsync();
        _hub = null;
        ProcessTree.Signal(started, ProcessTree.SIGKILL);
        await ProcessTree.WaitGoneAsync(started, TimeSpan.FromSeconds(10));
    }

    public async ValueTask DisposeAsync() => await StopAsync();

    private IEnumerable<string> Config(string masterAddress)
    {
        string Q(string s) => "'" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";
        return
        [
            "# Written by JupyterHubSpawnerTests: a hub on loopback whose servers run on the test cluster.",
            $"c.JupyterHub.bind_url = {Q(PublicUrl.ToString())}",
            $"c.JupyterHub.hub_bind_url = {Q($"http://127.0.0.1:{HubPort}")}",
            $"c.ConfigurableHTTPProxy.api_url = {Q($"http://127.0.0.1:{ProxyApiPort}")}",
            $"c.ConfigurableHTTPProxy.pid_file = {Q(Path.Combine(_dir, "proxy.pid"))}",
            $"c.JupyterHub.pid_file = {Q(Path.Combine(_dir, "jupyterhub.pid"))}",
            $"c.JupyterHub.db_url = {Q("sqlite:///" + Path.Combine(_dir, "jupyterhub.sqlite"))}",
            $"c.JupyterHub.cookie_secret_file = {Q(Path.Combine(_dir, "cookie_secret"))}",
            "c.JupyterHub.authenticator_class = 'dummy'",
            // Servers outlive a hub restart; the spawner finds them again.
            "c.JupyterHub.cleanup_servers = False",
            "c.JupyterHub.spawner_class = 'sched_jupyterhub.SchedulerSpawner'",
            $"c.SchedulerSpawner.master = {Q(masterAddress)}",
            "c.SchedulerSpawner.ip = '127.0.0.1'",
            // Tests run as root, and the notebook server refuses root without this flag.
            "c.SchedulerSpawner.args = ['--allow-root']",
            "c.Spawner.cpu_limit = 0.5",
            "c.Spawner.mem_limit = '256M'",
            // A loaded machine can be slow to start a notebook server.
            "c.Spawner.start_timeout = 180",
            "c.Spawner.http_timeout = 120",
            $"c.JupyterHub.services = [{{'name': 'e2e', 'api_token': {Q(ApiToken)}}}]",
            "c.JupyterHub.load_roles = [{'name': 'e2e', 'scopes': ['admin:users', 'admin:servers', 'access:servers'], 'services': ['e2e']}]",
        ];
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
