using System.Globalization;
using Scheduler.LocalEtcd;

namespace Scheduler.Cli.Cluster;

/// <summary>What <see cref="LocalCluster"/> starts.</summary>
public sealed class LocalClusterOptions
{
    public int Masters { get; init; } = 1;

    public int Agents { get; init; } = 1;

    /// <summary>Port of the first master (0: any free port); further masters take the next ports.</summary>
    public int MasterPort { get; init; }

    /// <summary>Port of the first agent's file service (0: any free port).</summary>
    public int AgentPort { get; init; }

    /// <summary>Work directory; null: a new temp directory, removed on stop.</summary>
    public string? WorkDir { get; init; }

    public string AgentResources { get; init; } = "cpus:4;mem:4096;disk:8192;ports:[31000-31999]";

    public IReadOnlyList<string> MasterArgs { get; init; } = [];

    public IReadOnlyList<string> AgentArgs { get; init; } = [];

    /// <summary>Called with (process name, line) for each output line of every daemon.</summary>
    public Action<string, string>? OnLine { get; init; }

    /// <summary>Also run the jobs framework (<c>schedctl jobs run</c>) against the masters.</summary>
    public bool Jobs { get; init; }

    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The command that starts <c>schedctl</c> for the daemons; null: this program.</summary>
    public IReadOnlyList<string>? Command { get; init; }

    /// <summary>Run with TLS everywhere (a throwaway CA in the work dir), authentication and ACLs
    /// (credentials in the work dir, see <see cref="DevCredentials"/>); false: plaintext, and
    /// masters allow anonymous callers.</summary>
    public bool Secure { get; init; } = true;
}

/// <summary>
/// A master (or several on a local etcd) and agents on loopback, each a separate <c>schedctl</c>
/// process with its own work dir; used by <c>schedctl dev up</c> and the demo. Stopping it leaves
/// no process and (for a temp work dir) no files behind.
/// </summary>
public sealed class LocalCluster : IAsyncDisposable
{
    private readonly List<DaemonProcess> _masters = [];
    private readonly List<DaemonProcess> _agents = [];
    private readonly bool _ownsWorkDir;
    private LocalEtcdCluster? _etcd;
    private DaemonProcess? _jobs;
    private int _stopped;

    private LocalCluster(string workDir, bool ownsWorkDir)
    {
        WorkDir = workDir;
        _ownsWorkDir = ownsWorkDir;
    }

    public string WorkDir { get; }

    public List<string> MasterAddresses { get; } = [];

    public List<(string Id, string Address)> AgentInfo { get; } = [];

    public string MasterList => string.Join(",", MasterAddresses);

    /// <summary>The cluster's credentials; null when it runs without authentication.</summary>
    public DevCredentials? Credentials { get; private set; }

    /// <summary>A token of the superuser <c>admin</c>; null when the cluster runs without authentication.</summary>
    public string? AdminToken => Credentials?.AdminToken;

    /// <summary>The CA file clients trust (<c>DIR/tls/ca.pem</c>); null when the cluster runs without TLS.</summary>
    public string? CaFile => Credentials?.CaFile;

    /// <summary>Channel settings of an operator client that can do everything: the admin token
    /// over TLS trusting the cluster's CA; plaintext with no token for an insecure cluster.</summary>
    public Channels.GrpcChannelSettings AdminChannel() => Credentials?.AdminChannel() ?? new Channels.GrpcChannelSettings();

    /// <summary>The environment a <c>schedctl</c> process needs to act as the admin on this cluster
    /// (<c>SCHED_MASTER</c>, <c>SCHED_TOKEN</c>, <c>SCHED_TLS_CA</c>).</summary>
    public IReadOnlyDictionary<string, string> AdminEnvironment() => new Dictionary<string, string>
    {
        ["SCHED_MASTER"] = MasterList,
        ["SCHED_TOKEN"] = AdminToken ?? "",
        ["SCHED_TLS_CA"] = CaFile ?? "",
    };

    /// <summary>The Jobs API address when the jobs framework runs, else null.</summary>
    public string? JobsAddress { get; private set; }

    /// <summary>The last output lines of every daemon (for failure reports).</summary>
    public string RecentOutput() => string.Join(Environment.NewLine, _masters.Concat(_agents).Concat(_jobs is null ? [] : [_jobs])
        .Where(d => d.RecentOutput.Length > 0)
        .Select(d => $"--- {d.Name} (last lines) ---{Environment.NewLine}{d.RecentOutput}"));

    public static async Task<LocalCluster> StartAsync(LocalClusterOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Masters < 1 || options.Agents < 0)
        {
            throw CliException.BadInput("--masters must be at least 1 and --agents at least 0");
        }
        var owns = options.WorkDir is null;
        var workDir = options.WorkDir ?? Path.Combine(Path.GetTempPath(), "schedctl-" + Guid.NewGuid().ToString("N")[..10]);
        workDir = Path.GetFullPath(workDir);
        Directory.CreateDirectory(workDir);
        var cluster = new LocalCluster(workDir, owns);
        try
        {
            await cluster.StartDaemonsAsync(options, ct);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    private async Task StartDaemonsAsync(LocalClusterOptions o, CancellationToken ct)
    {
        var parent = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        var securityArgs = new List<string>();
        var agentSecurityArgs = new List<string>();
        var jobsSecurityArgs = new List<string>();
        var jobsEnvironment = new Dictionary<string, string> { ["SCHED_TLS_CA"] = "" };
        if (o.Secure)
        {
            Credentials = DevCredentials.Ensure(WorkDir);
            securityArgs.AddRange(["--token-key", Credentials.TokenKey, "--acls", Credentials.Acls, .. TlsArgs(Credentials.DaemonTls("master"))]);
            agentSecurityArgs.AddRange(["--token-file", Credentials.AgentTokenFile, "--token-key", Credentials.TokenPublicKey, "--acls", Credentials.Acls, .. TlsArgs(Credentials.DaemonTls("agent"))]);
            jobsSecurityArgs.AddRange(TlsArgs(Credentials.DaemonTls("jobs")));
            jobsEnvironment["SCHED_TOKEN"] = Credentials.AdminToken;
        }
        else
        {
            securityArgs.Add("--insecure-allow-anonymous");
            jobsEnvironment["SCHED_TOKEN"] = "";
        }
        var etcdArgs = new List<string>();
        if (o.Masters > 1)
        {
            var etcdUrl = await StartEtcdAsync(o, ct);
            etcdArgs.AddRange(["--etcd", etcdUrl]);
        }
        for (var i = 0; i < o.Masters; i++)
        {
            var port = o.MasterPort == 0 ? 0 : o.MasterPort + i;
            var name = o.Masters == 1 ? "master" : $"master{i + 1}";
            var args = new List<string> { "master", "run", "--listen", $"127.0.0.1:{port}", "--work-dir", Path.Combine(WorkDir, name), "--watch-parent", parent };
            args.AddRange(etcdArgs);
            args.AddRange(securityArgs);
            args.AddRange(o.MasterArgs);
            var master = DaemonProcess.Start(name, args, Path.Combine(WorkDir, name + ".log"), o.OnLine, o.Command);
            _masters.Add(master);
        }
        foreach (var master in _masters)
        {
            MasterAddresses.Add(await master.WaitForAsync(master.Listening, "'master listening on'", o.StartTimeout, ct));
        }
        for (var i = 0; i < o.Agents; i++)
        {
            var port = o.AgentPort == 0 ? 0 : o.AgentPort + i;
            var name = $"agent{i + 1}";
            var args = new List<string>
            {
                "agent", "run", "--master", MasterList, "--listen", $"127.0.0.1:{port}", "--work-dir", AgentWorkDir(i),
                "--resources", o.AgentResources, "--attributes", $"host:{name}", "--hostname", name, "--watch-parent", parent,
            };
            args.AddRange(agentSecurityArgs);
            args.AddRange(o.AgentArgs);
            _agents.Add(DaemonProcess.Start(name, args, Path.Combine(WorkDir, name + ".log"), o.OnLine, o.Command));
        }
        foreach (var agent in _agents)
        {
            var address = await agent.WaitForAsync(agent.Listening, "'agent listening on'", o.StartTimeout, ct);
            var id = await agent.WaitForAsync(agent.Registered, "'agent registered as'", o.StartTimeout, ct);
            AgentInfo.Add((id, address));
        }
        if (o.Jobs)
        {
            // With replicated masters, the jobs state lives in their etcd too (under /sched/jobs).
            _jobs = DaemonProcess.Start("jobs", ["jobs", "run", "--master", MasterList, "--work-dir", Path.Combine(WorkDir, "jobs"), "--listen", "127.0.0.1:0", "--watch-parent", parent, .. etcdArgs, .. jobsSecurityArgs],
                Path.Combine(WorkDir, "jobs.log"), o.OnLine, o.Command, jobsEnvironment);
            JobsAddress = await _jobs.WaitForAsync(_jobs.Listening, "'Jobs API listening on'", o.StartTimeout, ct);
        }
    }

    private static string[] TlsArgs(Channels.Tls.TlsFiles files) => ["--tls-cert", files.Certificate!, "--tls-key", files.Key!, "--tls-ca", files.Ca!];

    private string AgentWorkDir(int index) => Path.Combine(WorkDir, $"agent{index + 1}");

    private async Task<string> StartEtcdAsync(LocalClusterOptions o, CancellationToken ct)
    {
        // A three-member etcd, as in production: the masters' leases and the registry survive the
        // loss of one member. Its data dirs and logs go to DIR/etcd (m0, m0.log, …).
        try
        {
            _etcd = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions
            {
                Members = 3,
                BaseDirectory = Path.Combine(WorkDir, "etcd"),
                StartTimeout = o.StartTimeout,
                Log = EtcdLines(o.OnLine),
            }, ct);
        }
        catch (EtcdNotInstalledException e)
        {
            throw new CliException($"--masters > 1 needs etcd: {e.Message}");
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            throw new CliException($"the local etcd did not start: {e.Message} (logs under {Path.Combine(WorkDir, "etcd")})");
        }
        return string.Join(",", _etcd.Endpoints.Select(e => e.Contains("://", StringComparison.Ordinal) ? e : "http://" + e));
    }

    /// <summary>The etcd runner's lines ("[etcd m0] text") for <paramref name="onLine"/>, under the member's name like the other daemons' lines.</summary>
    private static Action<string>? EtcdLines(Action<string, string>? onLine) => onLine is null ? null : line =>
    {
        var end = line.StartsWith('[') ? line.IndexOf("] ", StringComparison.Ordinal) : -1;
        onLine(end > 1 ? line[1..end] : "etcd", end > 1 ? line[(end + 2)..] : line);
    };

    /// <summary>
    /// Reports each daemon (etcd, master, agent) that exits on its own, with its exit code, its last
    /// lines and its log file, through <paramref name="report"/>; completes when no master is left
    /// (the cluster is of no use then). Exits caused by stopping the cluster are not reported.
    /// </summary>
    public async Task WatchDaemonsAsync(Action<string> report, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(report);
        var running = new List<Watched>();
        if (_etcd is { } etcd)
        {
            for (var i = 0; i < etcd.Count; i++)
            {
                var member = i;
                running.Add(new Watched("etcd " + etcd.MemberName(member), etcd.ProcessId(member) ?? -1, etcd.Exited(member), () => etcd.RecentOutput(member), etcd.LogFile(member), IsMaster: false));
            }
        }
        running.AddRange(_masters.Concat(_agents).Select(d => new Watched(d.Name, d.Pid, d.Exited, () => d.RecentOutput, Path.Combine(WorkDir, d.Name + ".log"), _masters.Contains(d))));
        var mastersLeft = _masters.Count;
        while (running.Count > 0 && mastersLeft > 0)
        {
            var exited = await Task.WhenAny(running.Select(d => d.Exited)).WaitAsync(ct);
            var daemon = running.First(d => d.Exited == exited);
            running.Remove(daemon);
            if (Volatile.Read(ref _stopped) != 0)
            {
                return;
            }
            mastersLeft -= daemon.IsMaster ? 1 : 0;
            var last = daemon.RecentOutput().Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault()?.Trim();
            report($"{daemon.Name} (pid {daemon.Pid}) exited with code {await exited}" +
                (string.IsNullOrEmpty(last) ? "" : $"; its last line: {last}") +
                $"; full log: {daemon.LogFile}");
        }
    }

    /// <summary>Stops agents with their task supervisors and tasks (<see cref="AgentTeardown"/>),
    /// masters and etcd; removes a temp work dir. Nothing else is signalled.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }
        if (_jobs is not null)
        {
            await _jobs.DisposeAsync();
        }
        await Task.WhenAll(_agents.Select((a, i) => AgentTeardown.StopAsync(a, AgentWorkDir(i), TimeSpan.FromSeconds(5))));
        await Task.WhenAll(_masters.Select(m => m.DisposeAsync().AsTask()));
        if (_etcd is not null)
        {
            await _etcd.DisposeAsync();
        }
        if (_ownsWorkDir)
        {
            for (var attempt = 0; attempt < 5; attempt++)
            {
                try
                {
                    Directory.Delete(WorkDir, recursive: true);
                    break;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    await Task.Delay(200);
                }
                catch (DirectoryNotFoundException)
                {
                    break;
                }
            }
        }
    }

    /// <summary>A daemon <see cref="WatchDaemonsAsync"/> reports on.</summary>
    private sealed record Watched(string Name, int Pid, Task<int> Exited, Func<string> RecentOutput, string LogFile, bool IsMaster);
}
