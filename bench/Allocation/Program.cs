using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Scheduler.Bench.Allocation;

// Allocator scale benchmark (the Mesos allocator benchmark grid). See README.md.
var quick = args.Contains("--quick");
var json = args.Contains("--json");
var only = args.SkipWhile(a => a != "--scenario").Skip(1).FirstOrDefault();
var declineBudget = TimeSpan.FromSeconds(quick ? 1.5 : 8);

int[] agentGrid = quick ? [1_000, 10_000] : [1_000, 10_000, 50_000];
int[] frameworkGrid = quick ? [100, 1_000] : [100, 1_000, 3_000];

var results = new JsonArray();
var table = new List<string>();

void Log(string line) => Console.Error.WriteLine(line);

void Add(string scenario, int agents, int frameworks, int roles, Dictionary<string, object> metrics, Dictionary<string, object>? extraParams = null)
{
    var p = new JsonObject { ["agents"] = agents, ["frameworks"] = frameworks, ["roles"] = roles };
    foreach (var (k, v) in extraParams ?? [])
    {
        p[k] = ToNode(v);
    }

    var m = new JsonObject();
    foreach (var (k, v) in metrics)
    {
        m[k] = ToNode(v);
    }

    results.Add(new JsonObject { ["scenario"] = scenario, ["params"] = p, ["metrics"] = m });
    table.Add($"{scenario,-14} {agents,7} {frameworks,6} {roles,5}  " + string.Join("  ", metrics.Select(kv => $"{kv.Key}={Format(kv.Value)}")));
    Log(table[^1]);
}

static JsonNode? ToNode(object v) => v switch
{
    double d => double.IsFinite(d) ? JsonValue.Create(Math.Round(d, 4)) : null,
    int i => JsonValue.Create(i),
    long l => JsonValue.Create(l),
    bool b => JsonValue.Create(b),
    _ => JsonValue.Create(v.ToString()),
};

static string Format(object v) => v switch
{
    double d => d.ToString(d >= 100 ? "F0" : "F3", System.Globalization.CultureInfo.InvariantCulture),
    _ => v.ToString() ?? "",
};

static double Percentile(List<double> xs, double p)
{
    var s = xs.Order().ToList();
    return s[Math.Clamp((int)Math.Ceiling(p * s.Count) - 1, 0, s.Count - 1)];
}

static int RolesFor(int frameworks) => Math.Max(1, frameworks / 10);

static long Heap()
{
    GC.Collect();
    GC.WaitForPendingFinalizers();
    GC.Collect();
    return GC.GetTotalMemory(true);
}

void Require(bool condition, string what)
{
    if (!condition)
    {
        Console.Error.WriteLine($"benchmark invalid: {what}");
        Environment.Exit(3);
    }
}

// Memory the allocator keeps per agent after one full cycle (grants dropped, as the master would
// turn them into offers): built apart so that nothing else is on the heap.
static double RetainedPerAgent(int agents, int frameworks, int roles)
{
    var before = Heap();
    var c = Cluster.Build(agents, frameworks, roles);
    var count = c.TimedCycle().Grants.Count;
    var after = Heap();
    GC.KeepAlive(c);
    return count == agents ? (double)(after - before) / agents : double.NaN;
}

// Warm-up: every path once, so that JIT time is not in the first timed cycle.
{
    var w = Cluster.Build(200, 20, 4, guaranteeCpusPerRole: 10);
    var g = w.TimedCycle().Grants;
    foreach (var x in g)
    {
        w.Allocator.RecoverResources(x.FrameworkId, x.AgentId, x.Resources, TimeSpan.FromDays(1));
    }

    w.TimedCycle();
    w.Fairness();
}

foreach (var agents in agentGrid)
{
    foreach (var frameworks in frameworkGrid)
    {
        var roles = RolesFor(frameworks);

        // (a) fresh: one cycle offering every agent; repeated after recovering everything.
        if (only is null or "fresh")
        {
            var c = Cluster.Build(agents, frameworks, roles);
            var (firstGrants, firstMs, _) = c.TimedCycle(out var firstCpu);
            Require(firstGrants.Count == agents, $"fresh cycle made {firstGrants.Count} offers for {agents} agents");
            c.Held.AddRange(firstGrants);
            var (ratio, starved) = c.Fairness();
            Heap(); // leave earlier scenarios' garbage out of the timed cycles
            var wall = new List<double>();
            var cpu = new List<double>();
            long bytes = 0;
            var repeats = agents >= 50_000 ? 5 : 10;
            for (var i = 0; i < repeats; i++)
            {
                c.RecoverAll();
                var (grants, ms, b) = c.TimedCycle(out var cpuMs);
                Require(grants.Count == agents, "repeated fresh cycle did not offer every agent");
                c.Held.AddRange(grants);
                wall.Add(ms);
                cpu.Add(cpuMs);
                bytes += b;
            }

            c = null;
            Add("fresh", agents, frameworks, roles, new()
            {
                ["cycle_ms_first"] = firstMs,
                ["cycle_cpu_ms_first"] = firstCpu,
                ["cycle_ms_p50"] = Percentile(wall, 0.5),
                ["cycle_ms_p99"] = Percentile(wall, 0.99),
                ["cycle_cpu_ms_p50"] = Percentile(cpu, 0.5),
                ["cycle_cpu_ms_p99"] = Percentile(cpu, 0.99),
                ["offers_per_s"] = agents / (Percentile(wall, 0.5) / 1000),
                ["cycle_alloc_bytes_per_agent"] = (double)bytes / repeats / agents,
                ["retained_bytes_per_agent"] = RetainedPerAgent(agents, frameworks, roles),
                ["fairness_max_over_min"] = ratio,
                ["frameworks_without_offer"] = starved,
                ["samples"] = repeats,
            });
        }

        // (c) steady: 1% of agents' resources recovered, one incremental cycle.
        if (only is null or "steady")
        {
            var c = Cluster.Build(agents, frameworks, roles);
            var (g0, _, _) = c.TimedCycle();
            Require(g0.Count == agents, "steady warm-up did not offer every agent");
            var held = g0.ToList();
            Heap();
            var random = new Random(7);
            var wall = new List<double>();
            var cpu = new List<double>();
            long bytes = 0;
            var offers = 0;
            var recoverPerCycle = Math.Max(1, agents / 100);
            var gcTimed = 0;
            for (var i = 0; i < 30; i++)
            {
                for (var k = 0; k < recoverPerCycle; k++)
                {
                    var j = random.Next(held.Count);
                    var g = held[j];
                    held[j] = held[^1];
                    held.RemoveAt(held.Count - 1);
                    c.Allocator.RecoverResources(g.FrameworkId, g.AgentId, g.Resources, null);
                }

                var gen1 = GC.CollectionCount(1);
                var (grants, ms, b) = c.TimedCycle(out var cpuMs);
                gcTimed += GC.CollectionCount(1) - gen1;
                Require(grants.Count > 0, "steady cycle made no offers");
                held.AddRange(grants);
                offers += grants.Count;
                wall.Add(ms);
                cpu.Add(cpuMs);
                bytes += b;
            }

            Add("steady", agents, frameworks, roles, new()
            {
                ["cycle_ms_p50"] = Percentile(wall, 0.5),
                ["cycle_ms_p99"] = Percentile(wall, 0.99),
                ["cycle_cpu_ms_p50"] = Percentile(cpu, 0.5),
                ["cycle_cpu_ms_p99"] = Percentile(cpu, 0.99),
                ["offers_per_cycle"] = (double)offers / wall.Count,
                ["gen1_or_2_gcs_in_timed_cycles"] = gcTimed,
                ["cycle_alloc_bytes"] = (double)bytes / wall.Count,
                ["samples"] = wall.Count,
            });
        }

        // (b) decline-heavy: every framework declines every offer with a long filter, until every
        // framework has seen every agent or the time budget per grid point runs out.
        if (only is null or "decline")
        {
            var baseline = Heap();
            var c = Cluster.Build(agents, frameworks, roles);
            Heap();
            var wall = new List<double>();
            var cpu = new List<double>();
            long offers = 0;
            var target = (long)agents * frameworks;
            var budget = Stopwatch.StartNew();
            double recoverMs = 0;
            double recoverCpuMs = 0;
            while (offers < target && budget.Elapsed < declineBudget)
            {
                var (grants, ms, _) = c.TimedCycle(out var cpuMs);
                if (grants.Count == 0)
                {
                    break;
                }

                wall.Add(ms);
                cpu.Add(cpuMs);
                offers += grants.Count;
                var rs = Stopwatch.GetTimestamp();
                var rc = ThreadCpu.Now();
                foreach (var g in grants)
                {
                    c.Allocator.RecoverResources(g.FrameworkId, g.AgentId, g.Resources, TimeSpan.FromDays(1));
                }

                recoverMs += Stopwatch.GetElapsedTime(rs).TotalMilliseconds;
                recoverCpuMs += (ThreadCpu.Now() - rc) / 1e6;
            }

            Require(wall.Count > 0, "decline-heavy made no offers");
            var retained = Heap() - baseline;
            GC.KeepAlive(c);
            Add("decline-heavy", agents, frameworks, roles, new()
            {
                ["cycle_ms_p50"] = Percentile(wall, 0.5),
                ["cycle_ms_p99"] = Percentile(wall, 0.99),
                ["cycle_cpu_ms_p50"] = Percentile(cpu, 0.5),
                ["cycle_cpu_ms_p99"] = Percentile(cpu, 0.99),
                ["cycle_ms_max"] = wall.Max(),
                ["cycles"] = wall.Count,
                ["offers"] = offers,
                ["seen_fraction"] = (double)offers / target,
                ["complete"] = offers >= target,
                ["offers_per_s"] = offers / (wall.Sum() / 1000),
                ["recover_us_per_offer"] = recoverMs * 1000 / offers,
                ["recover_cpu_us_per_offer"] = recoverCpuMs * 1000 / offers,
                ["retained_bytes_per_agent"] = (double)retained / agents,
            });
        }
    }
}

// (d) quota: 1k roles with guarantees (half the cluster guaranteed in total), one framework each.
if (only is null or "quota")
{
    int[] quotaAgents = quick ? [10_000] : [10_000, 50_000];
    foreach (var agents in quotaAgents)
    {
        const int roles = 1_000;
        const int frameworks = 1_000;
        var guarantee = agents * 2.0 / 2 / roles;
        var c = Cluster.Build(agents, frameworks, roles, guarantee);
        var (g0, firstMs, _) = c.TimedCycle(out var firstCpu);
        Require(g0.Count == agents, $"quota cycle made {g0.Count} offers for {agents} agents");
        c.Held.AddRange(g0);
        var below = c.Allocator.GetSnapshot().Roles.Count(r => r.Quota is not null && Scheduler.Protocol.Resources.ResourceSet.From(r.Allocated).Scalar("cpus") < guarantee - 1e-9);
        var (ratio, starved) = c.Fairness();
        Heap();
        var wall = new List<double>();
        var cpu = new List<double>();
        for (var i = 0; i < 5; i++)
        {
            c.RecoverAll();
            var (grants, ms, _) = c.TimedCycle(out var cpuMs);
            Require(grants.Count == agents, "repeated quota cycle did not offer every agent");
            c.Held.AddRange(grants);
            wall.Add(ms);
            cpu.Add(cpuMs);
        }

        Add("quota", agents, frameworks, roles, new()
        {
            ["cycle_ms_first"] = firstMs,
            ["cycle_cpu_ms_first"] = firstCpu,
            ["cycle_ms_p50"] = Percentile(wall, 0.5),
            ["cycle_ms_p99"] = Percentile(wall, 0.99),
            ["cycle_cpu_ms_p50"] = Percentile(cpu, 0.5),
            ["cycle_cpu_ms_p99"] = Percentile(cpu, 0.99),
            ["offers_per_s"] = agents / (Percentile(wall, 0.5) / 1000),
            ["roles_below_guarantee"] = below,
            ["fairness_max_over_min"] = ratio,
            ["frameworks_without_offer"] = starved,
        }, new() { ["guarantee_cpus_per_role"] = guarantee });
    }
}

if (json)
{
    var doc = new JsonObject
    {
        ["benchmark"] = "allocation",
        ["machine"] = new JsonObject
        {
            ["cores"] = Environment.ProcessorCount,
            ["os"] = RuntimeInformation.OSDescription,
            ["runtime"] = RuntimeInformation.FrameworkDescription,
            ["arch"] = RuntimeInformation.ProcessArchitecture.ToString(),
            ["quick"] = quick,
        },
        ["results"] = results,
    };
    Console.WriteLine(doc.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
}
else
{
    Console.WriteLine($"allocation benchmark ({(quick ? "quick" : "full")} grid, {Environment.ProcessorCount} cores, {RuntimeInformation.FrameworkDescription})");
    Console.WriteLine("scenario        agents    fws roles  metrics");
    foreach (var line in table)
    {
        Console.WriteLine(line);
    }
}

return 0;
