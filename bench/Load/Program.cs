using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Scheduler.Simulation;
using Scheduler.Bench.Load;

// End-to-end throughput and scale: a real master process, simulated agents speaking AgentLink,
// and SDK frameworks launching MOCK tasks. See README.md for targets and figures.
var json = args.Contains("--json");
var quick = args.Contains("--quick");
int? Arg(string name)
{
    var i = Array.IndexOf(args, name);
    if (i < 0)
    {
        return null;
    }
    if (i + 1 >= args.Length || !int.TryParse(args[i + 1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < 0)
    {
        throw new ArgumentException($"{name} needs a non-negative integer, e.g. {name} 100");
    }
    return v;
}
var agentsArg = Arg("--agents");
var tasksArg = Arg("--tasks");
var frameworks = Math.Max(1, Arg("--frameworks") ?? 1);
var taskMs = Arg("--task-ms") ?? 0;
var capSeconds = Arg("--cap-s") ?? (quick ? 40 : 120);
var retryMs = Arg("--retry-ms") ?? 10_000;
var rateArg = Arg("--rate") ?? 0;
var holdSeconds = Arg("--hold-s") ?? 0;
var holdAgentsSeconds = Arg("--hold-agents-s") ?? 0;
// Simulated agents share HTTP/2 connections (SimulatedAgentOptions.AgentsPerChannel); real
// agents each have their own, which the last point of the sweep measures.
var agentsPerConnection = Math.Max(1, Arg("--agents-per-connection") ?? 200);
// --secure: every point runs twice, plaintext and then secure (TLS on every connection, agents with
// client certificates and tokens, frameworks with tokens, ACLs on the master), side by side.
var secureToo = args.Contains("--secure");

// The sweep (up to 50,000 agents, where one cycle's offers exceed a single message), one paced point (launch latency at half the 10,000/s target rate), and the largest
// point again with a connection per agent.
List<(int Agents, int Tasks, int Rate, int PerConnection)> grid = agentsArg is not null || tasksArg is not null
    ? [(agentsArg ?? 100, tasksArg ?? 10_000, rateArg, agentsPerConnection)]
    : quick ? [(100, 10_000, 0, agentsPerConnection)]
    : [(100, 10_000, 0, 200), (100, 100_000, 0, 200), (1_000, 10_000, 0, 200), (1_000, 100_000, 0, 200), (10_000, 10_000, 0, 200), (10_000, 100_000, 0, 200), (50_000, 100_000, 0, 200), (1_000, 50_000, 5_000, 200), (10_000, 100_000, 0, 1)];

var results = new JsonArray();
var rows = new List<string[]>();
var failures = 0;
foreach (var (agents, tasks, rate, perConnection, secure) in grid.SelectMany(g => secureToo ? new[] { (g.Agents, g.Tasks, g.Rate, g.PerConnection, false), (g.Agents, g.Tasks, g.Rate, g.PerConnection, true) } : [(g.Agents, g.Tasks, g.Rate, g.PerConnection, false)]))
{
    var (metrics, ok, note) = await RunPointAsync(agents, tasks, rate, perConnection, secure);
    failures += ok ? 0 : 1;
    var scenario = $"agents{agents}_tasks{tasks}" + (rate > 0 ? $"_rate{rate}" : "") + (perConnection != 200 ? $"_per_connection{perConnection}" : "");
    if (secure && results.LastOrDefault() is JsonObject plain && plain["scenario"]?.GetValue<string>() == scenario && plain["metrics"] is JsonObject plainMetrics)
    {
        foreach (var key in new[] { "launches_per_s", "churn_launches_per_s", "status_updates_per_s" })
        {
            if (plainMetrics[key] is JsonValue p && p.TryGetValue<double>(out var before) && before > 0 && metrics[key] is JsonValue q && q.TryGetValue<double>(out var after))
            {
                metrics[key + "_ratio_vs_plaintext"] = Math.Round(after / before, 3);
            }
        }
    }
    results.Add(new JsonObject
    {
        ["scenario"] = scenario + (secure ? "_secure" : ""),
        ["params"] = new JsonObject { ["agents"] = agents, ["tasks"] = tasks, ["frameworks"] = frameworks, ["task_ms"] = taskMs, ["cap_s"] = capSeconds, ["status_retry_ms"] = retryMs, ["launch_rate_per_s"] = rate, ["agents_per_connection"] = perConnection, ["tls_and_authentication"] = secure },
        ["metrics"] = metrics,
        ["complete"] = ok,
        ["note"] = note,
    });
    rows.Add([agents.ToString(CultureInfo.InvariantCulture) + (secure ? " (secure)" : ""), tasks.ToString(CultureInfo.InvariantCulture), rate > 0 ? rate.ToString(CultureInfo.InvariantCulture) : "burst",
        F(metrics, "launches_per_s"), F(metrics, "launch_ms_p50"), F(metrics, "launch_ms_p99"), F(metrics, "status_updates_per_s"),
        F(metrics, "offers_per_s"), F(metrics, "master_cpu_s_per_1000_tasks"), F(metrics, "master_peak_rss_mib"),
        F(metrics, "master_bytes_per_running_task"), F(metrics, "master_gc_heap_bytes_per_running_task"), F(metrics, "master_bytes_per_agent"),
        F(metrics, "master_gc_heap_bytes_per_agent"), ok ? "ok" : "INCOMPLETE"]);
}

if (json)
{
    var doc = new JsonObject
    {
        ["benchmark"] = "Load",
        ["machine"] = new JsonObject { ["cores"] = Environment.ProcessorCount, ["os"] = System.Runtime.InteropServices.RuntimeInformation.OSDescription, ["runtime"] = Environment.Version.ToString() },
        ["results"] = results,
    };
    Console.Out.WriteLine(doc.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
}
else
{
    string[] head = ["agents", "tasks", "rate", "launch/s", "p50 ms", "p99 ms", "upd/s", "offers/s", "cpu s/1k", "peak MiB", "B/task", "heap B/task", "B/agent", "heap B/agent", "run"];
    var widths = head.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
    Console.Out.WriteLine(string.Join("  ", head.Select((h, i) => h.PadLeft(widths[i]))));
    foreach (var r in rows)
    {
        Console.Out.WriteLine(string.Join("  ", r.Select((c, i) => c.PadLeft(widths[i]))));
    }
}
return failures == 0 ? 0 : 1;

static string F(JsonObject m, string key) => m[key] is JsonValue v && v.TryGetValue<double>(out var d) && d >= 0 ? d.ToString(d >= 100 ? "0" : "0.##", CultureInfo.InvariantCulture) : "-";

void Log(string line)
{
    Console.Error.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {line}");
}

async Task<(JsonObject Metrics, bool Ok, string Note)> RunPointAsync(int agentCount, int taskCount, int rate, int perConnection, bool secure)
{
    var metrics = new JsonObject();
    var notes = new List<string>();
    var ok = true;
    await using var master = await MasterProcess.StartAsync([], secure);
    Log($"point {agentCount} agents x {taskCount} tasks, {perConnection} agents per connection{(secure ? ", secure (TLS, tokens, ACLs)" : "")}: master {master.Address} (pid {master.Pid})");
    var rssIdle = master.MemoryBytes("VmRSS");
    var heapIdle = await master.LiveHeapBytesAsync();
    var perAgentTasks = (int)Math.Ceiling(taskCount / (double)agentCount * 1.25) + 10;
    var resources = FormattableString.Invariant($"cpus:{Math.Max(1, perAgentTasks / 100.0 + 1):0.##};mem:{perAgentTasks + 1024};disk:10000");
    await using var host = new SimulatedAgentHost(new SimulatedAgentOptions
    {
        Masters = [master.Address],
        Count = agentCount,
        Resources = resources,
        HostnamePrefix = "load-",
        StatusRetry = TimeSpan.FromMilliseconds(Math.Max(1, retryMs)),
        StatusRetryMax = TimeSpan.FromMilliseconds(Math.Max(10_000, retryMs)),
        AgentsPerChannel = perConnection,
        Channel = master.AgentChannel(),
    });
    var sw = Stopwatch.StartNew();
    host.Start();
    await host.WaitForRegistrationAsync(TimeSpan.FromSeconds(Math.Max(60, agentCount / 50)));
    metrics["agents_register_s"] = Math.Round(sw.Elapsed.TotalSeconds, 2);
    await Task.Delay(TimeSpan.FromSeconds(2)); // let registrations settle before reading RSS
    var rssAgents = master.MemoryBytes("VmRSS");
    var heapAgents = await master.LiveHeapBytesAsync();
    var rssAgentsAfterGc = master.MemoryBytes("VmRSS");
    metrics["master_bytes_per_agent"] = Math.Round((rssAgents - rssIdle) / (double)agentCount);
    metrics["master_bytes_per_agent_after_gc"] = Math.Round((rssAgentsAfterGc - rssIdle) / (double)agentCount);
    metrics["master_gc_heap_bytes_per_agent"] = Math.Round(((double)heapAgents - heapIdle) / agentCount);
    if (holdAgentsSeconds > 0)
    {
        Log($"  holding the registered agents {holdAgentsSeconds} s before the fill (master pid {master.Pid})");
        await Task.Delay(TimeSpan.FromSeconds(holdAgentsSeconds));
    }

    // Phase 1: fill — tasks held running (mock.run_ms = -1) to measure launches and memory.
    var hold = await PhaseAsync(master, host, taskCount, runMs: -1, untilTerminal: false, rate);
    ok &= hold.Complete;
    metrics["launches_per_s"] = hold.LaunchesPerS;
    metrics["launch_ms_p50"] = hold.P50;
    metrics["launch_ms_p99"] = hold.P99;
    metrics["offers_per_s"] = hold.OffersPerS;
    metrics["master_cpu_s_per_1000_tasks"] = hold.CpuPer1000;
    var rssHold = master.MemoryBytes("VmRSS");
    var heapHold = await master.LiveHeapBytesAsync();
    var rssHoldAfterGc = master.MemoryBytes("VmRSS");
    metrics["master_rss_after_gc_mib_full"] = Math.Round(rssHoldAfterGc / 1048576.0, 1);
    metrics["master_bytes_per_running_task"] = Math.Round((rssHold - rssAgents) / (double)Math.Max(1, hold.Running));
    metrics["master_bytes_per_running_task_after_gc"] = Math.Round((rssHoldAfterGc - rssAgentsAfterGc) / (double)Math.Max(1, hold.Running));
    metrics["master_gc_heap_bytes_per_running_task"] = Math.Round(((double)heapHold - heapAgents) / Math.Max(1, hold.Running));
    metrics["master_rss_mib_full"] = Math.Round(rssHold / 1048576.0, 1);
    metrics["master_gc_heap_mib_full"] = Math.Round(heapHold / 1048576.0, 1);
    metrics["tasks_running"] = hold.Running;
    if (!hold.Complete)
    {
        notes.Add($"fill: {hold.Running}/{taskCount} RUNNING within {capSeconds} s");
    }
    if (holdSeconds > 0)
    {
        Log($"  holding the fill {holdSeconds} s before teardown (master pid {master.Pid})");
        await Task.Delay(TimeSpan.FromSeconds(holdSeconds));
    }
    var drain = Stopwatch.StartNew();
    await hold.Teardown();
    while (host.ActiveTasks > 0 && drain.Elapsed < TimeSpan.FromSeconds(capSeconds))
    {
        await Task.Delay(100);
    }
    metrics["teardown_kill_s"] = Math.Round(drain.Elapsed.TotalSeconds, 2);
    if (host.ActiveTasks > 0)
    {
        notes.Add($"teardown: {host.ActiveTasks} tasks still held by agents after {capSeconds} s");
        ok = false;
    }

    // Phase 2: churn — tasks finish after task-ms; RUNNING + FINISHED through the master, acked.
    var churn = await PhaseAsync(master, host, taskCount, runMs: taskMs, untilTerminal: true, rate);
    ok &= churn.Complete;
    metrics["churn_launches_per_s"] = churn.LaunchesPerS;
    metrics["churn_launch_ms_p50"] = churn.P50;
    metrics["churn_launch_ms_p99"] = churn.P99;
    metrics["status_updates_per_s"] = churn.UpdatesPerS;
    metrics["churn_master_cpu_s_per_1000_tasks"] = churn.CpuPer1000;
    metrics["tasks_finished"] = churn.Terminal;
    metrics["task_failures"] = hold.Failed + churn.Failed;
    metrics["acks_rejected_by_master"] = hold.AckFailures + churn.AckFailures;
    if (!churn.Complete)
    {
        notes.Add($"churn: {churn.Terminal}/{taskCount} FINISHED within {capSeconds} s");
    }
    metrics["master_peak_rss_mib"] = Math.Round(master.MemoryBytes("VmHWM") / 1048576.0, 1);
    metrics["agent_resends"] = Interlocked.Read(ref host.Counters.Resends);
    metrics["agent_reconnects"] = Interlocked.Read(ref host.Counters.Reconnects);
    metrics["agent_update_batches"] = Interlocked.Read(ref host.Counters.Batches);
    await churn.Teardown();
    Log($"point done: {string.Join(", ", metrics.Select(kv => $"{kv.Key}={kv.Value}"))}{(notes.Count > 0 ? " | " + string.Join("; ", notes) : "")}");
    return (metrics, ok, string.Join("; ", notes));
}

async Task<PhaseResult> PhaseAsync(MasterProcess master, SimulatedAgentHost host, int taskCount, int runMs, bool untilTerminal, int rate)
{
    var frameworksList = new List<LoadFramework>();
    var per = taskCount / frameworks;
    for (var i = 0; i < frameworks; i++)
    {
        frameworksList.Add(new LoadFramework(master.Address, $"load{(untilTerminal ? "c" : "h")}{i}", i == frameworks - 1 ? taskCount - per * (frameworks - 1) : per, runMs, rate / frameworks, master.OperatorChannel()));
    }
    var cpu0 = master.CpuSeconds();
    var start = Stopwatch.GetTimestamp();
    foreach (var f in frameworksList)
    {
        f.Start();
    }
    var target = Task.WhenAll(frameworksList.Select(f => untilTerminal ? f.AllTerminal : f.AllRunning));
    var complete = await Task.WhenAny(target, Task.Delay(TimeSpan.FromSeconds(capSeconds))) == target;
    var cpu1 = master.CpuSeconds();
    var first = frameworksList.Where(f => f.FirstAcceptAt != 0).Select(f => f.FirstAcceptAt).DefaultIfEmpty(start).Min();
    var lastRunning = frameworksList.Select(f => f.LastRunningAt).Max();
    var lastTerminal = frameworksList.Select(f => f.LastTerminalAt).Max();
    var running = frameworksList.Sum(f => f.Running);
    var terminal = frameworksList.Sum(f => f.Terminal);
    var launchS = Math.Max(1e-6, Stopwatch.GetElapsedTime(first, lastRunning == 0 ? Stopwatch.GetTimestamp() : lastRunning).TotalSeconds);
    var updS = Math.Max(1e-6, Stopwatch.GetElapsedTime(first, lastTerminal == 0 ? Stopwatch.GetTimestamp() : lastTerminal).TotalSeconds);
    var lat = frameworksList.SelectMany(f => f.Latencies).Where(d => !double.IsNaN(d)).OrderBy(d => d).ToArray();
    double Pct(double p) => lat.Length == 0 ? -1 : Math.Round(lat[Math.Min(lat.Length - 1, (int)(p * lat.Length))], 1);
    var offers = frameworksList.Sum(f => f.Offers);
    var updates = frameworksList.Sum(f => f.Updates);
    var wall = Math.Max(1e-6, Stopwatch.GetElapsedTime(start).TotalSeconds);
    var failedCalls = frameworksList.Sum(f => Interlocked.Read(ref f.FailedCalls));
    var ackFailures = frameworksList.Sum(f => Interlocked.Read(ref f.AckFailures));
    Log($"  phase run_ms={runMs}: running {running}, terminal {terminal}, offers {offers}, updates {updates}, failed calls {failedCalls}, rejected acks {ackFailures}, {wall:0.0} s, complete {complete}{(frameworksList.Select(f => f.FirstFailure).FirstOrDefault(x => x is not null) is { } ff ? "; first failure: " + ff : "")}");
    return new PhaseResult(
        complete,
        running,
        terminal,
        frameworksList.Sum(f => f.Failed),
        ackFailures,
        Math.Round(running / launchS),
        Pct(0.50),
        Pct(0.99),
        Math.Round(updates / updS),
        Math.Round(offers / wall, 1),
        Math.Round((cpu1 - cpu0) / Math.Max(1, untilTerminal ? terminal : running) * 1000, 3),
        async () =>
        {
            foreach (var f in frameworksList)
            {
                try
                {
                    await f.TeardownAsync().WaitAsync(TimeSpan.FromSeconds(30));
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    Log($"  teardown failed: {e.Message}");
                }
                await f.DisposeAsync();
            }
        });
}

internal sealed record PhaseResult(bool Complete, int Running, int Terminal, long Failed, long AckFailures, double LaunchesPerS, double P50, double P99,
    double UpdatesPerS, double OffersPerS, double CpuPer1000, Func<Task> Teardown);
