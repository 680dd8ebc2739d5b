using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Sched.V1;
using Scheduler.Etcd;
using Scheduler.LocalEtcd;
using Scheduler.Master.Election;
using Scheduler.Master.Registry;

// Election failover and registry commit latency on a real local 3-member etcd.
//   election_crash:  the leader's process is killed (SIGKILL) → time until a follower leads.
//   election_partition: the leader's only etcd member is frozen → when the old leader gave up and
//                    when the follower was elected (it must give up first).
//   election_resign: the leader resigns → time until a follower leads.
//   registry_commit: latency of one-record commits (sequential) and throughput of concurrent ones,
//                    etcd store vs embedded file store.
if (args.Length == 5 && args[0] == "--candidate")
{
    // A leader in its own process, to be killed: campaigns, reports its term, then waits.
    using var candidateClient = new EtcdClient(new EtcdClientOptions { Endpoints = args[1].Split(',') });
    var candidate = new EtcdLeaderElection(candidateClient, new MasterInfo { Id = args[3], Address = "bench-" + args[3] },
        new EtcdLeaderElectionOptions { LeaderKey = args[2] + "/leader", MastersPrefix = args[2] + "/masters/", Ttl = TimeSpan.FromSeconds(int.Parse(args[4], System.Globalization.CultureInfo.InvariantCulture)) });
    var won = await candidate.CampaignAsync(CancellationToken.None);
    Console.WriteLine($"LEADING {won.Term}");
    await Task.Delay(Timeout.Infinite, won.Lost).ContinueWith(_ => { }, TaskScheduler.Default);
    return 1;
}

var quick = args.Contains("--quick");
var json = args.Contains("--json");
var scenarioIndex = Array.IndexOf(args, "--scenario");
var only = scenarioIndex >= 0 && scenarioIndex + 1 < args.Length ? args[scenarioIndex + 1] : null;
string[] scenarios = ["election_crash", "election_partition", "election_resign", "registry_commit", "master_failover"];
if (scenarioIndex >= 0 && (only is null || !scenarios.Contains(only)))
{
    Console.Error.WriteLine($"--scenario needs one of: {string.Join(", ", scenarios)}");
    return 2;
}
bool Runs(string scenario) => only is null || only == scenario;
var rounds = quick ? 2 : 10;
int? IntOption(string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture, out var v) && v > 0 ? v : null;
}
var leaseTtlSeconds = IntOption("--lease-ttl") ?? 2;
var holdSeconds = IntOption("--hold") ?? 2;
var ttl = TimeSpan.FromSeconds(3);
TimeSpan[] ttls = [TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(3)];
var results = new JsonArray();
void Log(string text)
{
    if (!json)
    {
        Console.WriteLine(text);
    }
    else
    {
        Console.Error.WriteLine(text);
    }
}

await using var cluster = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 3 });
Log($"etcd cluster up: {string.Join(", ", cluster.Endpoints)}");

foreach (var t in ttls)
{
    ttl = t;
    if (Runs("election_crash"))
    {
        await ElectionCrashAsync();
    }
    if (Runs("election_partition"))
    {
        await ElectionPartitionAsync();
    }
}
ttl = TimeSpan.FromSeconds(3);
if (Runs("election_resign"))
{
    await ElectionResignAsync();
}
if (Runs("registry_commit"))
{
    await RegistryCommitAsync();
}
if (Runs("master_failover"))
{
    await MasterFailoverAsync();
}

if (json)
{
    var doc = new JsonObject
    {
        ["benchmark"] = "Failover",
        ["machine"] = new JsonObject
        {
            ["cores"] = Environment.ProcessorCount,
            ["os"] = RuntimeInformation.OSDescription,
            ["runtime"] = RuntimeInformation.FrameworkDescription,
            ["arch"] = RuntimeInformation.ProcessArchitecture.ToString(),
            ["etcd"] = cluster.Binary,
            ["quick"] = quick,
        },
        ["results"] = results,
    };
    Console.WriteLine(doc.ToJsonString());
}
return 0;

EtcdClient NewClient() => new(new EtcdClientOptions { Endpoints = [.. cluster.Endpoints] });

EtcdLeaderElection NewElection(EtcdClient client, string root, string id) => new(client, new MasterInfo { Id = id, Address = "bench-" + id },
    new EtcdLeaderElectionOptions { LeaderKey = root + "/leader", MastersPrefix = root + "/masters/", Ttl = ttl });

async Task ElectionCrashAsync()
{
    var failover = new List<double>();
    for (var round = 0; round < rounds; round++)
    {
        var root = "/bench/" + Guid.NewGuid().ToString("N");
        using var followerClient = NewClient();
        await using var follower = NewElection(followerClient, root, "b");
        using var leader = StartCandidate(root, "a");
        var line = await leader.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
        if (line is null || !line.StartsWith("LEADING ", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"the leader process did not lead: {line} {await leader.StandardError.ReadToEndAsync()}");
        }
        var oldTerm = ulong.Parse(line["LEADING ".Length..], System.Globalization.CultureInfo.InvariantCulture);
        await follower.Observed;
        var campaign = follower.CampaignAsync(CancellationToken.None);
        // Kill it at a random phase of its renewal rhythm.
        await Task.Delay(TimeSpan.FromMilliseconds(1000 + Random.Shared.Next(1000)));
        var killedAt = Stopwatch.GetTimestamp();
        leader.Kill();
        var won = await campaign.WaitAsync(TimeSpan.FromSeconds(30));
        failover.Add(Stopwatch.GetElapsedTime(killedAt).TotalMilliseconds);
        if (won.Term <= oldTerm)
        {
            throw new InvalidOperationException("the new term is not higher: the measurement is wrong");
        }
        await leader.WaitForExitAsync();
        Log($"ttl {ttl.TotalSeconds} s, crash round {round}: new leader {failover[^1]:0} ms after the leader process was killed");
    }
    Add("election_crash", new() { ["ttl_s"] = ttl.TotalSeconds, ["rounds"] = rounds, ["members"] = 3 }, new()
    {
        ["failover_ms_p50"] = Percentile(failover, 50),
        ["failover_ms_max"] = failover.Max(),
    });
}

Process StartCandidate(string root, string id)
{
    var psi = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
    if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
    {
        psi.ArgumentList.Add(typeof(EtcdCoordination).Assembly.Location.Replace("Scheduler.Master.dll", "bench-failover.dll", StringComparison.Ordinal));
    }
    foreach (var a in new[] { "--candidate", string.Join(',', cluster.Endpoints), root, id, ((int)ttl.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture) })
    {
        psi.ArgumentList.Add(a);
    }
    return Process.Start(psi) ?? throw new InvalidOperationException("could not start the leader process");
}

async Task ElectionPartitionAsync()
{
    // The leader talks to one etcd member only; that member is frozen (SIGSTOP): the leader's
    // keepalives stop. It must give up before the follower (on the other members) is elected.
    var failover = new List<double>();
    var lostAfter = new List<double>();
    var lostFirst = 0;
    for (var round = 0; round < rounds; round++)
    {
        var root = "/bench/" + Guid.NewGuid().ToString("N");
        var isolated = await FollowerMemberAsync();
        using var leaderClient = new EtcdClient(new EtcdClientOptions { Endpoints = [cluster.Endpoint(isolated)] });
        using var followerClient = new EtcdClient(new EtcdClientOptions { Endpoints = [.. cluster.Endpoints.Where((_, i) => i != isolated)] });
        await using var leader = NewElection(leaderClient, root, "a");
        await using var follower = NewElection(followerClient, root, "b");
        var leadership = await leader.CampaignAsync(CancellationToken.None);
        await follower.Observed;
        var campaign = follower.CampaignAsync(CancellationToken.None);
        await Task.Delay(TimeSpan.FromMilliseconds(1000 + Random.Shared.Next(1000)));
        long lostAt = 0;
        leadership.Lost.Register(() => Interlocked.Exchange(ref lostAt, Stopwatch.GetTimestamp()));
        var pausedAt = Stopwatch.GetTimestamp();
        cluster.Pause(isolated);
        try
        {
            await campaign.WaitAsync(TimeSpan.FromSeconds(30));
            var electedAt = Stopwatch.GetTimestamp();
            failover.Add(Stopwatch.GetElapsedTime(pausedAt, electedAt).TotalMilliseconds);
            var lost = Interlocked.Read(ref lostAt);
            if (lost != 0 && lost < electedAt)
            {
                lostFirst++;
                lostAfter.Add(Stopwatch.GetElapsedTime(pausedAt, lost).TotalMilliseconds);
            }
            Log($"ttl {ttl.TotalSeconds} s, partition round {round}: old leader gave up after {(lost == 0 ? double.NaN : Stopwatch.GetElapsedTime(pausedAt, lost).TotalMilliseconds):0} ms, new leader after {failover[^1]:0} ms");
        }
        finally
        {
            cluster.Resume(isolated);
        }
        await cluster.WaitHealthyAsync(isolated);
    }
    Add("election_partition", new() { ["ttl_s"] = ttl.TotalSeconds, ["rounds"] = rounds, ["members"] = 3 }, new()
    {
        ["failover_ms_p50"] = Percentile(failover, 50),
        ["old_leader_lost_ms_p50"] = lostAfter.Count > 0 ? Percentile(lostAfter, 50) : double.NaN,
        ["old_leader_lost_first_ratio"] = (double)lostFirst / rounds,
    });
}

async Task<int> FollowerMemberAsync()
{
    for (var i = 0; i < cluster.Count; i++)
    {
        using var one = new EtcdClient(new EtcdClientOptions { Endpoints = [cluster.Endpoint(i)] });
        var status = await one.StatusAsync();
        if (status.Leader != status.Header.MemberId)
        {
            return i;
        }
    }
    throw new InvalidOperationException("the etcd cluster has no follower");
}

async Task ElectionResignAsync()
{
    var handover = new List<double>();
    for (var round = 0; round < rounds; round++)
    {
        var root = "/bench/" + Guid.NewGuid().ToString("N");
        using var leaderClient = NewClient();
        using var followerClient = NewClient();
        await using var leader = NewElection(leaderClient, root, "a");
        await using var follower = NewElection(followerClient, root, "b");
        await leader.CampaignAsync(CancellationToken.None);
        await follower.Observed;
        var campaign = follower.CampaignAsync(CancellationToken.None);
        await Task.Delay(200);
        var started = Stopwatch.GetTimestamp();
        await leader.ResignAsync(CancellationToken.None);
        await campaign.WaitAsync(TimeSpan.FromSeconds(30));
        handover.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }
    Log($"resign handover p50 {Percentile(handover, 50):0.0} ms");
    Add("election_resign", new() { ["ttl_s"] = ttl.TotalSeconds, ["rounds"] = rounds, ["members"] = 3 }, new()
    {
        ["handover_ms_p50"] = Percentile(handover, 50),
        ["handover_ms_max"] = handover.Max(),
    });
}

async Task RegistryCommitAsync()
{
    var sequential = quick ? 200 : 1000;
    var concurrent = quick ? 500 : 2000;
    var root = "/bench/" + Guid.NewGuid().ToString("N");
    using var client = NewClient();
    await using var election = NewElection(client, root, "w");
    await election.CampaignAsync(CancellationToken.None);
    await using (var etcdStore = new EtcdRegistryStore(client, () => election.Fence, new EtcdRegistryStoreOptions { Prefix = root + "/registry/" }))
    {
        await MeasureStoreAsync("etcd", etcdStore, sequential, concurrent, () => etcdStore.TransactionsWritten);
    }
    var dir = Path.Combine(Path.GetTempPath(), "bench-failover-" + Guid.NewGuid().ToString("N"));
    try
    {
        await using var fileStore = FileRegistryStore.Open(dir);
        await MeasureStoreAsync("file", fileStore, sequential, concurrent, () => fileStore.FilesWritten);
    }
    finally
    {
        Directory.Delete(dir, recursive: true);
    }
}

async Task MeasureStoreAsync(string backend, IRegistryStore store, int sequential, int concurrent, Func<long> writes)
{
    var value = new AgentRecord { Info = new AgentInfo { Id = "agent", Hostname = "host.example" }, State = AgentRecord.Types.State.Admitted }.ToByteString();
    var latencies = new List<double>(sequential);
    for (var i = 0; i < sequential; i++)
    {
        var t = Stopwatch.GetTimestamp();
        await store.CommitAsync([new RegistryWrite($"agents/s{i}", value)], CancellationToken.None);
        latencies.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
    }
    var before = writes();
    var started = Stopwatch.GetTimestamp();
    await Task.WhenAll(Enumerable.Range(0, concurrent).Select(i => store.CommitAsync([new RegistryWrite($"agents/c{i}", value)], CancellationToken.None)));
    var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
    var groups = writes() - before;
    var loaded = await store.LoadAsync(CancellationToken.None);
    if (loaded.Count != sequential + concurrent)
    {
        throw new InvalidOperationException($"{backend}: {loaded.Count} records after {sequential + concurrent} commits");
    }
    var loadStarted = Stopwatch.GetTimestamp();
    await store.LoadAsync(CancellationToken.None);
    var loadMs = Stopwatch.GetElapsedTime(loadStarted).TotalMilliseconds;
    Log($"{backend}: commit p50 {Percentile(latencies, 50):0.00} ms p99 {Percentile(latencies, 99):0.00} ms; {concurrent / elapsed:0} concurrent commits/s in {groups} writes; load {loaded.Count} in {loadMs:0.0} ms");
    Add("registry_commit", new() { ["backend"] = backend, ["sequential"] = sequential, ["concurrent"] = concurrent }, new()
    {
        ["commit_ms_p50"] = Percentile(latencies, 50),
        ["commit_ms_p99"] = Percentile(latencies, 99),
        ["concurrent_commits_per_s"] = concurrent / elapsed,
        ["commits_per_write"] = (double)concurrent / Math.Max(1, groups),
        ["load_ms"] = loadMs,
        ["records"] = loaded.Count,
    });
}

async Task MasterFailoverAsync()
{
    // Fresh etcd per round (the masters keep their state under the fixed root /sched).
    const int agentCount = 200;
    const int taskCount = 2000;
    var mfRounds = IntOption("--rounds") ?? (quick ? 1 : 3);
    // Plaintext and secure (TLS, mutual TLS for agents, tokens, ACLs) rounds alternate, so that
    // load from elsewhere on the machine hits both alike.
    var plain = new Scheduler.Bench.Failover.MasterFailover(agentCount, taskCount, leaseTtlSeconds, TimeSpan.FromSeconds(holdSeconds), Log);
    var secure = new Scheduler.Bench.Failover.MasterFailover(agentCount, taskCount, leaseTtlSeconds, TimeSpan.FromSeconds(holdSeconds), Log) { Secure = true };
    var plainOutcomes = new List<Scheduler.Bench.Failover.MasterFailoverRound>();
    var secureOutcomes = new List<Scheduler.Bench.Failover.MasterFailoverRound>();
    for (var round = 0; round < mfRounds; round++)
    {
        plainOutcomes.Add(await plain.RunRoundAsync(round));
        Log($"round {round} secure:");
        secureOutcomes.Add(await secure.RunRoundAsync(round));
    }
    Report("master_failover", plainOutcomes, false);
    Report("master_failover_secure", secureOutcomes, true);
}

void Report(string scenario, List<Scheduler.Bench.Failover.MasterFailoverRound> outcomes, bool secure)
{
    const int agentCount = 200;
    const int taskCount = 2000;
    var mfRounds = outcomes.Count;
    List<double> Of(Func<Scheduler.Bench.Failover.MasterFailoverRound, double> f) => [.. outcomes.Select(f)];
    var metrics = new Dictionary<string, double>();
    foreach (var (name, values) in new[]
    {
        ("leader_elected_ms", Of(o => o.LeaderElectedMs)),
        ("agents_reregistered_ms", Of(o => o.AgentsReregisteredMs)),
        ("framework_resubscribed_ms", Of(o => o.FrameworkResubscribedMs)),
        ("first_offer_ms", Of(o => o.FirstOfferMs)),
    })
    {
        var done = values.Where(double.IsFinite).ToList();
        metrics[name + "_p50"] = done.Count == values.Count ? Percentile(done, 50) : double.NaN;
        metrics[name + "_max"] = done.Count == values.Count ? done.Max() : double.NaN;
    }
    metrics["tasks_running_after_min"] = outcomes.Min(o => o.TasksRunningAfter);
    metrics["task_launches_max"] = outcomes.Max(o => o.Launches);
    metrics["failed_rounds"] = outcomes.Count(o => o.Failure is not null);
    metrics["spurious_leader_changes"] = outcomes.Sum(o => o.SpuriousLeaderChanges);
    foreach (var o in outcomes.Where(o => o.Failure is not null))
    {
        Log($"{scenario} round failed: {o.Failure}");
    }
    Add(scenario, new()
    {
        ["lease_ttl_s"] = leaseTtlSeconds, ["hold_s"] = holdSeconds, ["rounds"] = mfRounds, ["masters"] = 3, ["etcd_members"] = 3, ["agents"] = agentCount, ["tasks"] = taskCount,
        ["tls"] = secure, ["authentication"] = secure,
    }, metrics);
}

void Add(string scenario, Dictionary<string, object> parameters, Dictionary<string, double> metrics)
{
    var p = new JsonObject();
    foreach (var (k, v) in parameters)
    {
        p[k] = JsonSerializer.SerializeToNode(v);
    }
    var m = new JsonObject();
    foreach (var (k, v) in metrics)
    {
        m[k] = double.IsFinite(v) ? Math.Round(v, 3) : null;
    }
    results.Add(new JsonObject { ["scenario"] = scenario, ["params"] = p, ["metrics"] = m });
}

static double Percentile(List<double> values, double p)
{
    var sorted = values.Order().ToArray();
    var index = (int)Math.Ceiling(p / 100 * sorted.Length) - 1;
    return sorted[Math.Clamp(index, 0, sorted.Length - 1)];
}
