using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Scheduler.Agent;
using Scheduler.Simulation;
using Scheduler.Agent.Supervision;
using Scheduler.Master;
using Scheduler.Hosting;

namespace Scheduler.Cli.Commands;

/// <summary><c>schedctl master run</c>, <c>schedctl agent run</c> and the hidden <c>agent supervise</c>.</summary>
public static class DaemonCommands
{
    private static readonly Option<string> MasterListen = new("--listen") { Description = "host:port to serve on (port 0: any free port).", DefaultValueFactory = _ => "127.0.0.1:5050" };
    private static readonly Option<string> MasterWorkDir = new("--work-dir") { Description = "Directory for the master's registry and state.", Required = true };
    private static readonly Option<string?> Etcd = new("--etcd") { Description = "etcd client URLs (URL,…): replicated masters; default: embedded file registry." };
    private static readonly Option<string?> Advertise = new("--advertise") { Description = "host:port others use to reach this master (default: the bound address)." };
    private static readonly Option<double?> HeartbeatInterval = new("--heartbeat-interval") { Description = "Agent heartbeat interval, seconds (default 1)." };
    private static readonly Option<double?> AgentTimeout = new("--agent-timeout") { Description = "Seconds without agent messages before it is unreachable (default 5)." };
    private static readonly Option<int?> MaxAgentHeartbeats = new("--max-agent-heartbeats") { Description = "Cluster-wide bound on agent heartbeats per second: with N agents the interval is max(--heartbeat-interval, N/this) and the timeout grows with it (default 1000; 0 = no bound)." };
    private static readonly Option<double?> FrameworkHeartbeat = new("--framework-heartbeat-interval") { Description = "Framework heartbeat interval, seconds (default 2)." };
    private static readonly Option<double?> OfferTimeout = new("--offer-timeout") { Description = "Rescind offers after this many seconds (default: never)." };
    private static readonly Option<double?> AllocationInterval = new("--allocation-interval") { Description = "Allocation batching interval, seconds (default 0.1)." };
    private static readonly Option<double?> LeaseTtl = new("--lease-ttl") { Description = "Leader lease TTL on etcd, whole seconds ≥ 2 (default 2): a dead leader is replaced within about this time." };
    private static readonly Option<string?> EtcdUser = new("--etcd-user") { Description = "etcd authentication as USER:PASSWORD (or USER with the password in $SCHED_ETCD_PASSWORD)." };
    private static readonly Option<string?> MasterMetrics = new("--metrics-listen") { Description = "IP:port for the Prometheus scrape endpoint GET /metrics (default: none)." };
    private static readonly Option<double?> ReregisterTimeout = new("--agent-reregister-timeout") { Description = "After a failover, seconds to wait for agents to re-register (default 10)." };
    private static readonly Option<string?> AgentRemovalRateLimit = new("--agent-removal-rate-limit") { Description = "At most N agents marked unreachable by the agent timeout per duration, e.g. 1/20mins (default: no limit)." };

    private static readonly Option<double?> MaxFailoverTimeout = new("--max-failover-timeout") { Description = "Longest failover timeout a framework may ask for, seconds (default 604800, a week)." };
    private static readonly Option<int?> MaxRolesPerFramework = new("--max-roles-per-framework") { Description = "Most roles one framework may subscribe with (default 1024)." };
    private static readonly Option<int?> MaxAgentResourceKinds = new("--max-agent-resource-kinds") { Description = "Most distinct resource names one agent may offer (default 32)." };
    private static readonly Option<bool> InsecureAllowAnonymous = new("--insecure-allow-anonymous") { Description = "Serve callers that present no credentials, with every action allowed: anyone who reaches the port owns the cluster. For local single-user use only." };
    private static readonly Option<string?> TokenKey = new("--token-key") { Description = "ECDSA key (PEM) that signs and checks bearer tokens, shared by the masters of a cluster; created (mode 0600) when missing (default WORKDIR/token-key.pem)." };
    private static readonly Option<string?> Acls = new("--acls") { Description = "ACL file (YAML; see docs/security.md), read again when it changes (default: the built-in policy: principal 'admin' is a superuser, every principal acts on its own frameworks and tasks)." };
    private static readonly Option<string?> MaxTokenTtl = new("--max-token-ttl") { Description = "Longest lifetime of a token the master issues, e.g. 30d, 12h (default 366d)." };
    private static readonly Option<string?> AgentTokenKey = new("--token-key") { Description = "The masters' token key (PEM; the public key suffices, e.g. from 'openssl ec -in token-key.pem -pubout'): callers of the file service must then present a token it signed or a client certificate of the cluster's CA, and read only the sandboxes they may (default: none; the file service serves anyone)." };
    private static readonly Option<string?> AgentAcls = new("--acls") { Description = "The masters' ACL file, read again when it changes: who may read which sandboxes (access_sandboxes); needs --token-key (default: the built-in policy: each principal reads its own frameworks' sandboxes)." };
    private static readonly Option<string?> AllowedTaskUsers = new("--allowed-task-users") { Description = "The only OS users tasks may run as on this agent, comma-separated, e.g. nobody,app (default: any the masters' ACLs allow). Others end in TASK_ERROR (REASON_TASK_UNAUTHORIZED)." };
    private static readonly Option<string> AgentMasters = new("--master") { Description = "Master address(es), host:port[,…].", Required = true };
    private static readonly Option<string> AgentListen = new("--listen") { Description = "host:port for the agent's file service (port 0: any free port).", DefaultValueFactory = _ => "127.0.0.1:0" };
    private static readonly Option<string> AgentWorkDir = new("--work-dir") { Description = "Directory for checkpoints and sandboxes.", Required = true };
    private static readonly Option<string?> AgentResources = new("--resources") { Description = "Resources, e.g. 'cpus:4;mem:4096;disk:10000;ports:[31000-32000]' (default: detected)." };
    private static readonly Option<string?> AgentAttributes = new("--attributes") { Description = "Attributes, e.g. 'rack:r1;zone:a'." };
    private static readonly Option<string?> Isolation = new("--isolation") { Description = "auto | cgroups | none (default auto)." };
    private static readonly Option<string?> Runtime = new("--runtime") { Description = "OCI runtime: auto | runc | crun (default auto)." };
    private static readonly Option<string[]> FetchAllowDir = new("--fetch-allow-dir") { Description = "A directory whose files tasks may fetch with file:// URIs (repeatable; default none: file:// URIs are refused). Symbolic links in it are not followed." };
    private static readonly Option<string?> Hostname = new("--hostname") { Description = "Hostname reported to the master." };
    private static readonly Option<int> SimulateCount = new("--count") { Description = "How many simulated agents to run (each with its own AgentLink stream).", Required = true };
    private static readonly Option<string?> SimulateResources = new("--resources") { Description = "Resources of each simulated agent (default 'cpus:16;mem:65536;disk:100000;ports:[31000-32000]')." };
    private static readonly Option<string?> SimulatePrefix = new("--hostname-prefix") { Description = "Hostnames are this prefix and the agent's index (default 'sim-<this host>-')." };
    private static readonly Option<double?> SimulateRunTime = new("--task-run-time") { Description = "Seconds a task runs before TASK_FINISHED when it has no mock.run_ms label (default 0)." };
    private static readonly Option<string?> AgentMetrics = new("--metrics-listen") { Description = "IP:port for the Prometheus scrape endpoint GET /metrics (default: none)." };
    private static readonly Option<double?> StatusRetry = new("--status-retry") { Description = "Initial resend interval of unacknowledged status updates, seconds (default 1)." };

    /// <summary>Exit when this process id is gone (used by <c>dev up</c>, the demo and tests so that
    /// a killed parent leaves no daemons behind).</summary>
    private static readonly Option<bool> Verbose = new("--verbose") { Description = "Log more (debug), with the stack of every error." };
    internal static readonly Option<int?> WatchParent = new("--watch-parent") { Hidden = true };

    public static Command CreateMaster()
    {
        var run = new Command("run", "Run a master daemon (until Ctrl-C/SIGTERM).");
        foreach (var o in new Option[] { MasterListen, MasterWorkDir, Etcd, EtcdUser, LeaseTtl, Advertise, HeartbeatInterval, AgentTimeout, MaxAgentHeartbeats, FrameworkHeartbeat, OfferTimeout, AllocationInterval, ReregisterTimeout, AgentRemovalRateLimit, MasterMetrics, MaxFailoverTimeout, MaxRolesPerFramework, MaxAgentResourceKinds, InsecureAllowAnonymous, TokenKey, Acls, MaxTokenTtl, Verbose, WatchParent })
        {
            run.Options.Add(o);
        }
        run.SetAction((parse, ct) => RunMasterAsync(parse, ct));
        var master = new Command("master", "The master daemon.");
        master.Subcommands.Add(run);
        return master;
    }

    public static Command CreateAgent()
    {
        var run = new Command("run", "Run an agent daemon (until Ctrl-C/SIGTERM).");
        foreach (var o in new Option[] { AgentMasters, AgentListen, AgentWorkDir, AgentResources, AgentAttributes, Isolation, Runtime, Hostname, FetchAllowDir, StatusRetry, AgentMetrics, AgentTokenKey, AgentAcls, AllowedTaskUsers, Verbose, WatchParent })
        {
            run.Options.Add(o);
        }
        run.SetAction((parse, ct) => RunAgentAsync(parse, ct));
        var simulate = new Command("simulate", "Run N simulated agents against a master (load testing): real AgentLink streams, mock executor semantics, no processes or cgroups. Until Ctrl-C/SIGTERM.");
        foreach (var o in new Option[] { AgentMasters, SimulateCount, SimulateResources, SimulatePrefix, SimulateRunTime, WatchParent })
        {
            simulate.Options.Add(o);
        }
        simulate.SetAction((parse, ct) => SimulateAgentsAsync(parse, ct));
        var supervise = new Command("supervise", "Task supervisor (started by the agent).") { Hidden = true, TreatUnmatchedTokensAsErrors = false };
        supervise.SetAction((parse, _) => SuperviseAsync(["agent", "supervise", .. parse.UnmatchedTokens]));
        var agent = new Command("agent", "The agent daemon.");
        agent.Subcommands.Add(run);
        agent.Subcommands.Add(simulate);
        agent.Subcommands.Add(supervise);
        return agent;
    }

    public static Task<int> SuperviseAsync(string[] args)
    {
        return SupervisorHost.RunAsync(args, Console.Out, Console.Error);
    }

    private static int? Count(ParseResult parse, Option<int?> option, string name)
        => parse.GetValue(option) is { } n && n < 1 ? throw CliException.BadInput($"{name} must be at least 1") : parse.GetValue(option);

    private const double MaxSeconds = 315_360_000;

    private static TimeSpan? Seconds(ParseResult parse, Option<double?> option)
    {
        var value = parse.GetValue(option);
        if (value is null)
        {
            return null;
        }
        if (!double.IsFinite(value.Value) || value.Value <= 0 || value.Value > MaxSeconds)
        {
            throw CliException.BadInput($"{option.Name} must be a positive number of seconds up to {MaxSeconds} (ten years), not {value.Value.ToString(CultureInfo.InvariantCulture)}");
        }
        return TimeSpan.FromSeconds(value.Value);
    }

    private static async Task<int> RunMasterAsync(ParseResult parse, CancellationToken ct)
    {
        var listen = Addresses.Validate(parse.GetValue(MasterListen)!, "--listen", allowPortZero: true);
        var workDir = parse.GetValue(MasterWorkDir)!;
        var advertise = parse.GetValue(Advertise);
        if (advertise is not null)
        {
            Addresses.Validate(advertise, "--advertise", allowPortZero: false);
        }
        var etcd = (parse.GetValue(Etcd) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        using var stop = WatchParentProcess(parse, ct);
        var options = new MasterOptions { Listen = listen, WorkDir = workDir, Advertise = advertise };
        foreach (var e in etcd)
        {
            options.EtcdEndpoints.Add(e);
        }
        options.HeartbeatInterval = Seconds(parse, HeartbeatInterval) ?? options.HeartbeatInterval;
        options.AgentTimeout = Seconds(parse, AgentTimeout) ?? options.AgentTimeout;
        if (parse.GetValue(MaxAgentHeartbeats) is { } maxHeartbeats)
        {
            if (maxHeartbeats < 0)
            {
                throw CliException.BadInput($"--max-agent-heartbeats must be 0 (no bound) or a positive number of heartbeats per second; got {maxHeartbeats}");
            }
            options.MaxAgentHeartbeatsPerSecond = maxHeartbeats;
        }
        options.FrameworkHeartbeatInterval = Seconds(parse, FrameworkHeartbeat) ?? options.FrameworkHeartbeatInterval;
        options.OfferTimeout = Seconds(parse, OfferTimeout) ?? options.OfferTimeout;
        options.AllocationInterval = Seconds(parse, AllocationInterval) ?? options.AllocationInterval;
        options.AgentReregisterTimeout = Seconds(parse, ReregisterTimeout) ?? options.AgentReregisterTimeout;
        options.MaxFailoverTimeout = Seconds(parse, MaxFailoverTimeout) ?? options.MaxFailoverTimeout;
        options.MaxRolesPerFramework = Count(parse, MaxRolesPerFramework, "--max-roles-per-framework") ?? options.MaxRolesPerFramework;
        options.MaxAgentResourceKinds = Count(parse, MaxAgentResourceKinds, "--max-agent-resource-kinds") ?? options.MaxAgentResourceKinds;
        if (parse.GetValue(AgentRemovalRateLimit) is { } removalRate)
        {
            options.AgentRemovalRateLimit = AgentRemovalRate.TryParse(removalRate, out var rate, out var problem)
                ? rate
                : throw CliException.BadInput($"--agent-removal-rate-limit: {problem}");
        }
        if (Seconds(parse, LeaseTtl) is { } ttl)
        {
            if (ttl < TimeSpan.FromSeconds(2) || ttl > TimeSpan.FromMinutes(5) || ttl.Ticks % TimeSpan.TicksPerSecond != 0)
            {
                throw CliException.BadInput($"--lease-ttl must be a whole number of seconds from 2 to 300 (etcd's minimum lease is 2 s), not {ttl.TotalSeconds.ToString(CultureInfo.InvariantCulture)}");
            }
            if (etcd.Length == 0)
            {
                throw CliException.BadInput("--lease-ttl applies to replicated masters only: give --etcd URL,… as well");
            }
            options.LeaseTtl = ttl;
        }
        if (parse.GetValue(EtcdUser) is { Length: > 0 } user)
        {
            if (etcd.Length == 0)
            {
                throw CliException.BadInput("--etcd-user needs --etcd URL,…");
            }
            var colon = user.IndexOf(':', StringComparison.Ordinal);
            options.EtcdUsername = colon < 0 ? user : user[..colon];
            options.EtcdPassword = colon < 0 ? Environment.GetEnvironmentVariable("SCHED_ETCD_PASSWORD") : user[(colon + 1)..];
            if (options.EtcdUsername.Length == 0 || string.IsNullOrEmpty(options.EtcdPassword))
            {
                throw CliException.BadInput("--etcd-user takes USER:PASSWORD, or USER with the password in $SCHED_ETCD_PASSWORD");
            }
        }
        if (parse.GetValue(MasterMetrics) is { } metricsListen)
        {
            options.MetricsListen = Addresses.Validate(metricsListen, "--metrics-listen", allowPortZero: true);
        }
        options.Tls = DaemonTls(parse);
        options.AllowAnonymous = parse.GetValue(InsecureAllowAnonymous);
        options.TokenKeyFile = parse.GetValue(TokenKey);
        if (parse.GetValue(Acls) is { Length: > 0 } acls)
        {
            if (options.AllowAnonymous)
            {
                throw CliException.BadInput("--acls has no effect with --insecure-allow-anonymous (every action is allowed); leave one of them out");
            }
            try
            {
                Scheduler.Security.AclPolicyFile.Load(acls);
            }
            catch (Scheduler.Security.AclFileException e)
            {
                throw CliException.BadInput($"--acls: {e.Message}");
            }
            options.AclsFile = acls;
        }
        if (parse.GetValue(MaxTokenTtl) is { } maxTtl)
        {
            options.MaxTokenTtl = Durations.Parse(maxTtl, "--max-token-ttl");
        }
        Daemons.DaemonPreflight.WorkDir(options.WorkDir, "master");
        if (!options.AllowAnonymous || options.TokenKeyFile is not null)
        {
            var keyPath = options.TokenKeyFile ?? Path.Combine(options.WorkDir, "token-key.pem");
            try
            {
                Scheduler.Security.TokenKeys.LoadOrCreate(keyPath).Dispose();
            }
            catch (Exception e) when (e is InvalidOperationException or IOException or UnauthorizedAccessException)
            {
                throw CliException.BadInput($"--token-key: {e.Message}");
            }
        }
        if (options.EtcdEndpoints.Count == 0)
        {
            await Daemons.DaemonPreflight.MasterLockAsync(options.WorkDir);
        }
        Daemons.DaemonPreflight.Listen(options.Listen, "--listen");
        var verbose = parse.GetValue(Verbose);
        return await MasterHost.RunAsync(options, stop.Token, logging => Daemons.DaemonLogging.Configure(logging, verbose),
            new DaemonAnnouncements(Console.Out, Console.Error));
    }

    private static async Task<int> RunAgentAsync(ParseResult parse, CancellationToken ct)
    {
        var masters = Addresses.ParseList(parse.GetValue(AgentMasters)!, "--master");
        var listen = Addresses.Validate(parse.GetValue(AgentListen)!, "--listen", allowPortZero: true);
        ResourceText.CheckResources(parse.GetValue(AgentResources), "--resources");
        using var stop = WatchParentProcess(parse, ct);
        var options = new AgentOptions
        {
            Listen = listen,
            WorkDir = parse.GetValue(AgentWorkDir)!,
            Resources = parse.GetValue(AgentResources) ?? "",
            Attributes = parse.GetValue(AgentAttributes) ?? "",
            Isolation = parse.GetValue(Isolation) ?? "auto",
            Runtime = parse.GetValue(Runtime) ?? "auto",
            Hostname = parse.GetValue(Hostname),
            MetricsListen = parse.GetValue(AgentMetrics),
            Token = GlobalOptions.Token(parse),
            TokenKeyFile = parse.GetValue(AgentTokenKey),
            AclsFile = parse.GetValue(AgentAcls),
        };
        options.Masters.AddRange(masters);
        options.AllowedTaskUsers.AddRange((parse.GetValue(AllowedTaskUsers) ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
        if (options.AclsFile is { Length: > 0 } agentAcls && File.Exists(agentAcls))
        {
            try
            {
                _ = Scheduler.Security.AclPolicyFile.Load(agentAcls);
            }
            catch (Scheduler.Security.AclFileException e)
            {
                throw CliException.BadInput($"--acls: {e.Message}");
            }
        }
        if (options.TokenKeyFile is { Length: > 0 } agentKey && File.Exists(agentKey))
        {
            try
            {
                Scheduler.Security.TokenKeys.LoadVerifier(agentKey).Dispose();
            }
            catch (Exception e) when (e is InvalidOperationException or IOException or UnauthorizedAccessException)
            {
                throw CliException.BadInput($"--token-key: {e.Message}");
            }
        }
        options.Tls = DaemonTls(parse);
        options.FetchAllowDirs.AddRange(parse.GetValue(FetchAllowDir) ?? []);
        if (Seconds(parse, StatusRetry) is { } retry)
        {
            options.StatusRetryMin = retry;
            options.StatusRetryMax = retry * 4;
        }
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw CliException.BadInput(problems[0]);
        }
        Daemons.DaemonPreflight.WorkDir(options.WorkDir, "agent");
        Daemons.DaemonPreflight.AgentLock(options.WorkDir);
        Daemons.DaemonPreflight.Listen(options.Listen, "--listen");
        using var loggerFactory = Daemons.DaemonLogging.CreateFactory(parse.GetValue(Verbose));
        return await AgentHost.RunAsync(options, loggerFactory, stop.Token, new DaemonAnnouncements(Console.Out, Console.Error));
    }

    private static async Task<int> SimulateAgentsAsync(ParseResult parse, CancellationToken ct)
    {
        var masters = Addresses.ParseList(parse.GetValue(AgentMasters)!, "--master");
        var count = parse.GetValue(SimulateCount);
        if (count < 1)
        {
            throw CliException.BadInput($"--count must be at least 1 (got {count})");
        }
        var resources = parse.GetValue(SimulateResources);
        var runTime = Seconds(parse, SimulateRunTime) ?? TimeSpan.Zero;
        if (runTime < TimeSpan.Zero)
        {
            throw CliException.BadInput("--task-run-time must not be negative");
        }
        using var stop = WatchParentProcess(parse, ct);
        var defaults = new SimulatedAgentOptions();
        var options = new SimulatedAgentOptions
        {
            Masters = [.. masters],
            Count = count,
            Resources = resources ?? defaults.Resources,
            HostnamePrefix = parse.GetValue(SimulatePrefix) ?? $"sim-{Environment.MachineName}-",
            DefaultRunTime = runTime,
            Channel = GlobalOptions.ChannelSettings(parse),
        };
        SimulatedAgentHost created;
        try
        {
            created = new SimulatedAgentHost(options);
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw CliException.BadInput($"--resources: {e.Message}");
        }
        await using var host = created;
        host.Start();
        try
        {
            await host.WaitForRegistrationAsync(TimeSpan.FromSeconds(Math.Max(60, count / 50)), stop.Token);
        }
        catch (TimeoutException e)
        {
            await Console.Error.WriteLineAsync($"schedctl: {e.Message}; check --master and the master's log");
            return 1;
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
        Console.Out.WriteLine($"{count} simulated agents registered with {string.Join(',', masters)}");
        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token);
        }
        catch (OperationCanceledException)
        {
        }
        var c = host.Counters;
        Console.Out.WriteLine($"stopping: {Interlocked.Read(ref c.Launched)} tasks launched, {Interlocked.Read(ref c.UpdatesSent)} updates sent, {Interlocked.Read(ref c.Reconnects)} reconnects");
        return 0;
    }

    /// <summary>
    /// A daemon's <c>--tls-cert --tls-key --tls-ca</c>, checked (all three or none; each file
    /// loads) before anything starts; null when none is given.
    /// </summary>
    internal static Channels.Tls.TlsFiles? DaemonTls(ParseResult parse)
    {
        var files = GlobalOptions.DaemonTls(parse);
        try
        {
            _ = Hosting.ServerTls.FromFiles(files);
        }
        catch (Channels.Tls.TlsFileException e)
        {
            throw CliException.BadInput(e.Message);
        }
        return files;
    }

    /// <summary>A token cancelled by <paramref name="ct"/> or when the <c>--watch-parent</c> process exits.</summary>
    internal static CancellationTokenSource WatchParentProcess(ParseResult parse, CancellationToken ct)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (parse.GetValue(WatchParent) is not { } pid)
        {
            return cts;
        }
        Process parent;
        try
        {
            parent = Process.GetProcessById(pid);
        }
        catch (ArgumentException)
        {
            cts.Cancel();
            return cts;
        }
        _ = Task.Run(async () =>
        {
            try
            {
                await parent.WaitForExitAsync(cts.Token);
                Console.Error.WriteLine($"parent process {pid} exited; stopping");
                await cts.CancelAsync();
            }
            catch (OperationCanceledException)
            {
            }
            finally
            {
                parent.Dispose();
            }
        }, CancellationToken.None);
        return cts;
    }
}
