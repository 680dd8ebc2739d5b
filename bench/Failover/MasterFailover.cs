using Grpc.Net.Client;
using System.Diagnostics;
using System.Globalization;
using Sched.V1;
using Scheduler.Simulation;
using Scheduler.Cli.Cluster;
using Scheduler.Etcd;
using Scheduler.LocalEtcd;
using Scheduler.Protocol;
using Grpc.Core;
using Scheduler.Channels;

namespace Scheduler.Bench.Failover;

/// <summary>What one round of <see cref="MasterFailover"/> measured (NaN: did not happen in time).</summary>
internal sealed record MasterFailoverRound(double LeaderElectedMs, double AgentsReregisteredMs, double FrameworkResubscribedMs, double FirstOfferMs,
    int TasksRunningAfter, long Launches, string? Failure)
{
    /// <summary>Leader changes other than the one the kill caused (lease flapping under load).</summary>
    public int SpuriousLeaderChanges { get; init; }
}

/// <summary>
/// Master-level failover: a fresh 3-member etcd, 3 real master processes
/// (<c>dotnet schedctl.dll master run --etcd …</c>), simulated agents and one SDK framework
/// holding long-running MOCK tasks; the leading master is SIGKILLed and the time until a new
/// leader, all agents re-registered, the framework re-subscribed and the first offer is measured.
/// </summary>
internal sealed class MasterFailover
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private readonly int _agents;
    private readonly int _tasks;
    private readonly Action<string> _log;
    private readonly Microsoft.Extensions.Logging.ILogger? _sdkLogger;
    private readonly int _leaseTtlSeconds;
    private readonly TimeSpan _hold;

    /// <summary>Run secure, as <c>schedctl dev up</c> does: TLS on every endpoint (a throwaway CA),
    /// mutual TLS and tokens for the agents, a token for the framework, ACLs on the masters.</summary>
    public bool Secure { get; init; }

    /// <param name="leaseTtlSeconds">The masters' <c>--lease-ttl</c>.</param>
    /// <param name="hold">How long the loaded cluster runs before the kill (spurious leader changes are counted meanwhile).</param>
    public MasterFailover(int agents, int tasks, int leaseTtlSeconds, TimeSpan hold, Action<string> log)
    {
        _agents = agents;
        _tasks = tasks;
        _leaseTtlSeconds = leaseTtlSeconds;
        _hold = hold;
        _log = log;
        if (Environment.GetEnvironmentVariable("BENCH_FAILOVER_KEEP") is { Length: > 0 })
        {
            _sdkLogger = Microsoft.Extensions.Logging.LoggerFactory.Create(b => Microsoft.Extensions.Logging.ConsoleLoggerExtensions.AddSimpleConsole(b, o =>
            {
                o.TimestampFormat = "HH:mm:ss.fff ";
                o.SingleLine = true;
            })).CreateLogger("sdk");
        }
    }

    public async Task<MasterFailoverRound> RunRoundAsync(int round)
    {
        var baseDir = Path.Combine(Path.GetTempPath(), "bench-mfo-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(baseDir);
        var masters = new List<DaemonProcess>();
        var channels = new Dictionary<string, GrpcChannel>();
        LocalEtcdCluster? etcd = null;
        SimulatedAgentHost? agents = null;
        HoldingFramework? framework = null;
        try
        {
            etcd = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 3, BaseDirectory = Path.Combine(baseDir, "etcd") });
            var etcdUrls = string.Join(',', etcd.Endpoints.Select(e => "http://" + e));
            var dll = Path.Combine(AppContext.BaseDirectory, "schedctl.dll");
            if (!File.Exists(dll))
            {
                throw new FileNotFoundException($"schedctl.dll not found next to the benchmark ({dll}); build bench/Failover (it references src/Cli).");
            }
            var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
            // Secure: the credentials a dev cluster makes (CA, certificates, token key, ACLs, tokens).
            var credentials = Secure ? DevCredentials.Ensure(baseDir) : null;
            string[] security = credentials is null ? ["--insecure-allow-anonymous"] :
                ["--token-key", credentials.TokenKey, "--acls", credentials.Acls, "--tls-cert", credentials.DaemonTls("master").Certificate!, "--tls-key", credentials.DaemonTls("master").Key!, "--tls-ca", credentials.CaFile];
            var operatorChannel = credentials?.AdminChannel() ?? new GrpcChannelSettings();
            for (var i = 0; i < 3; i++)
            {
                var workDir = Path.Combine(baseDir, "master" + i.ToString(CultureInfo.InvariantCulture));
                Directory.CreateDirectory(workDir);
                masters.Add(DaemonProcess.Start("master" + i.ToString(CultureInfo.InvariantCulture),
                    ["master", "run", "--listen", "127.0.0.1:0", "--work-dir", workDir, .. security, "--etcd", etcdUrls, "--lease-ttl", _leaseTtlSeconds.ToString(CultureInfo.InvariantCulture),
                     "--watch-parent", Environment.ProcessId.ToString(CultureInfo.InvariantCulture)],
                    Path.Combine(workDir, "master.log"), command: [dotnet, dll]));
            }
            var addresses = new List<string>();
            foreach (var m in masters)
            {
                addresses.Add(await m.WaitForAsync(m.Listening, "its listening address", Deadline, CancellationToken.None));
            }
            foreach (var a in addresses)
            {
                channels[a] = GrpcChannels.ForAddress(a, operatorChannel);
            }
            var leader = await WaitForLeaderAsync(addresses, channels, exclude: null);
            var leaderIndex = addresses.IndexOf(leader);
            var firstTerm = await TermAsync(channels[leader]);
            _log($"round {round}: masters {string.Join(", ", addresses)}; leader {leader}");

            agents = new SimulatedAgentHost(new SimulatedAgentOptions
            {
                Masters = addresses,
                Count = _agents,
                Resources = "cpus:2;mem:2048;disk:10000",
                Channel = credentials is null ? null : new GrpcChannelSettings
                {
                    BearerToken = File.ReadAllText(credentials.AgentTokenFile).Trim(),
                    Tls = Scheduler.Channels.Tls.ClientTls.FromFiles(credentials.DaemonTls("agent")),
                },
            });
            agents.Start();
            await agents.WaitForRegistrationAsync(Deadline);
            framework = new HoldingFramework(addresses, "failover-bench", _tasks, _sdkLogger, credentials?.AdminChannel());
            framework.Start();
            await framework.AllRunning.WaitAsync(Deadline);
            var frameworkId = framework.FrameworkId ?? throw new InvalidOperationException("the framework has no id");
            _log($"round {round}: {_agents} agents registered, {_tasks} tasks running");
            // Let acknowledgements settle and the leader's registry writes land (and, with a longer
            // hold, watch the lease under the steady load of heartbeats and declines).
            await Task.Delay(_hold);
            var spurious = await TermAsync(channels[leader]) == firstTerm ? 0 : 1;
            if (spurious > 0)
            {
                _log($"round {round}: SPURIOUS leader change before the kill (term {firstTerm} → {await TermAsync(channels[leader])})");
            }

            var killedAt = Stopwatch.GetTimestamp();
            var killedUnix = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
            framework.MarkKill(killedAt);
            masters[leaderIndex].Kill();
            _log($"round {round}: SIGKILL leader {leader} (pid {masters[leaderIndex].Pid}) at {DateTime.UtcNow:HH:mm:ss.fff} UTC");
            var survivors = addresses.Where((_, i) => i != leaderIndex).ToList();

            string? failure = null;
            double elected = double.NaN, reregistered = double.NaN, resubscribed = double.NaN, firstOffer = double.NaN;
            string newLeader;
            try
            {
                newLeader = await WaitForLeaderAsync(survivors, channels, exclude: leader);
                elected = Ms(killedAt);
            }
            catch (TimeoutException e)
            {
                return new MasterFailoverRound(elected, reregistered, resubscribed, firstOffer, 0, agents.Counters.Launched, "no new leader: " + e.Message) { SpuriousLeaderChanges = spurious };
            }
            var channel = channels[newLeader];
            var newTerm = await TermAsync(channel);
            var connectedSeen = double.NaN;
            double? half = null, ninety = null;
            var until = Stopwatch.GetTimestamp() + (long)(Deadline.TotalSeconds * Stopwatch.Frequency);
            while (Stopwatch.GetTimestamp() < until && (double.IsNaN(reregistered) || double.IsNaN(connectedSeen) || framework.OfferAfterKill == 0))
            {
                try
                {
                    if (double.IsNaN(reregistered))
                    {
                        var state = await channel.AsyncUnaryCall(OperatorMethods.GetAgents, new GetAgentsRequest(), new CallOptions(deadline: DateTime.UtcNow + TimeSpan.FromSeconds(5))).ResponseAsync;
                        // Recovered agents are UNREACHABLE until they re-register: ACTIVE means back.
                        var active = state.Agents.Count(a => a.Status == AgentStatus.AgentActive);
                        if (half is null && active * 2 >= _agents)
                        {
                            half = Ms(killedAt);
                        }
                        if (ninety is null && active * 10 >= _agents * 9)
                        {
                            ninety = Ms(killedAt);
                        }
                        if (active >= _agents)
                        {
                            reregistered = Ms(killedAt);
                        }
                    }
                    if (double.IsNaN(connectedSeen))
                    {
                        var fws = await channel.AsyncUnaryCall(OperatorMethods.GetFrameworks, new GetFrameworksRequest(), new CallOptions(deadline: DateTime.UtcNow + TimeSpan.FromSeconds(5))).ResponseAsync;
                        if (fws.Frameworks.Any(f => f.Info.Id == frameworkId && f.Connected))
                        {
                            connectedSeen = Ms(killedAt);
                        }
                    }
                }
                catch (RpcException)
                {
                    // Not ready yet (recovering) or a call raced the change: poll again.
                }
                await Task.Delay(25);
            }
            if (framework.SubscribedAfterKill != 0)
            {
                resubscribed = Stopwatch.GetElapsedTime(killedAt, framework.SubscribedAfterKill).TotalMilliseconds;
            }
            if (framework.OfferAfterKill != 0)
            {
                firstOffer = Stopwatch.GetElapsedTime(killedAt, framework.OfferAfterKill).TotalMilliseconds;
            }
            var problems = new List<string>();
            if (double.IsNaN(reregistered))
            {
                problems.Add($"not all {_agents} agents re-registered with {newLeader} within {Deadline.TotalSeconds:0} s");
            }
            if (double.IsNaN(connectedSeen) || double.IsNaN(resubscribed))
            {
                problems.Add($"the framework did not re-subscribe (operator view connected: {!double.IsNaN(connectedSeen)}, SDK subscribed: {!double.IsNaN(resubscribed)})");
            }
            if (double.IsNaN(firstOffer))
            {
                problems.Add("no offer after the kill");
            }
            // Every task must still run, exactly once.
            GetTasksResponse tasks;
            try
            {
                tasks = await channel.AsyncUnaryCall(OperatorMethods.GetTasks, new GetTasksRequest { FrameworkId = frameworkId }, new CallOptions(deadline: DateTime.UtcNow + TimeSpan.FromSeconds(10))).ResponseAsync;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable)
            {
                // The new leader lost its leadership again (the lease flapped under load): ask whoever leads now.
                spurious++;
                problems.Add($"{newLeader} lost its leadership during the recovery ({e.Status.Detail})");
                var current = await WaitForLeaderAsync(survivors, channels, exclude: null);
                tasks = await channels[current].AsyncUnaryCall(OperatorMethods.GetTasks, new GetTasksRequest { FrameworkId = frameworkId }, new CallOptions(deadline: DateTime.UtcNow + TimeSpan.FromSeconds(10))).ResponseAsync;
            }
            var running = tasks.Tasks.Where(t => t.State == TaskState.TaskRunning).Select(t => t.Info.TaskId).Distinct().Count();
            if (running != _tasks || tasks.Tasks.Count != _tasks)
            {
                problems.Add($"{running} tasks RUNNING of {tasks.Tasks.Count} listed on the new leader (expected {_tasks})");
            }
            if (agents.Counters.Launched != _tasks)
            {
                problems.Add($"the agents launched {agents.Counters.Launched} tasks for {_tasks} task ids (some launched twice)");
            }
            if (Interlocked.Read(ref framework.Terminal) != 0)
            {
                problems.Add($"{framework.Terminal} terminal updates for tasks that run until killed");
            }
            if (await TermAsync(channel) != newTerm)
            {
                spurious++;
                problems.Add($"the new leader {newLeader} lost its leadership during the recovery (term {newTerm} → {await TermAsync(channel)})");
            }
            failure = problems.Count == 0 ? null : string.Join("; ", problems);
            _log($"round {round}: new leader {newLeader} after {elected:0} ms; agents re-registered 50 % {half:0} ms, 90 % {ninety:0} ms, 100 % {reregistered:0} ms; framework re-subscribed {resubscribed:0} ms (operator view {connectedSeen:0} ms); first offer {firstOffer:0} ms; {running} tasks running, {agents.Counters.Launched} launches, {agents.Counters.Reconnects} agent reconnect failures{(failure is null ? "" : "; FAILED: " + failure)}");
            if (failure is not null)
            {
                foreach (var (m, i) in masters.Select((m, i) => (m, i)).Where(x => x.i != leaderIndex))
                {
                    _log($"--- master{i} recent output ---\n{m.RecentOutput}");
                }
            }
            return new MasterFailoverRound(elected, reregistered, resubscribed, firstOffer, running, agents.Counters.Launched, failure) { SpuriousLeaderChanges = spurious };
        }
        finally
        {
            if (framework is not null)
            {
                await framework.DisposeAsync();
            }
            if (agents is not null)
            {
                await agents.DisposeAsync();
            }
            foreach (var c in channels.Values)
            {
                c.Dispose();
            }
            foreach (var m in masters)
            {
                m.Kill();
                await m.DisposeAsync();
            }
            if (etcd is not null)
            {
                await etcd.DisposeAsync();
            }
            try
            {
                if (Environment.GetEnvironmentVariable("BENCH_FAILOVER_KEEP") is { Length: > 0 })
                {
                    _log($"kept {baseDir} (master logs in master*/master.log)");
                }
                else
                {
                    Directory.Delete(baseDir, recursive: true);
                }
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>The term of the leader as <paramref name="channel"/>'s master sees it (0: none known).</summary>
    private static async Task<ulong> TermAsync(GrpcChannel channel)
    {
        var r = await channel.AsyncUnaryCall(OperatorMethods.GetLeader, new GetLeaderRequest(), new CallOptions(deadline: DateTime.UtcNow + TimeSpan.FromSeconds(5))).ResponseAsync;
        return r.Leader?.Term ?? 0;
    }

    private static double Ms(long since) => Stopwatch.GetElapsedTime(since).TotalMilliseconds;

    /// <summary>Polls GetLeader on <paramref name="candidates"/> until one says it leads.</summary>
    private static async Task<string> WaitForLeaderAsync(IReadOnlyList<string> candidates, Dictionary<string, GrpcChannel> channels, string? exclude)
    {
        var until = Stopwatch.GetTimestamp() + (long)(Deadline.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < until)
        {
            var answers = candidates.Select(async a =>
            {
                try
                {
                    var r = await channels[a].AsyncUnaryCall(OperatorMethods.GetLeader, new GetLeaderRequest(), new CallOptions(deadline: DateTime.UtcNow + TimeSpan.FromSeconds(2))).ResponseAsync;
                    return r.IsSelf && a != exclude ? a : null;
                }
                catch (RpcException)
                {
                    return null;
                }
            }).ToList();
            foreach (var answer in await Task.WhenAll(answers))
            {
                if (answer is not null)
                {
                    return answer;
                }
            }
            await Task.Delay(10);
        }
        throw new TimeoutException($"no master of {string.Join(", ", candidates)} leads after {Deadline.TotalSeconds:0} s");
    }
}
