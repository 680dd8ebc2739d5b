using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sched.V1;
using Scheduler.Agent;
using Scheduler.Agent.Execution;
using Scheduler.Agent.Images;
using Scheduler.Agent.Isolation;
using Scheduler.Agent.Supervision;

// Launch latency and throughput of the agent's executors against the bare baselines.
// Supervisors are the native sched-supervisor copied beside the benchmark by src/Agent's build.
var quick = args.Contains("--quick");
var json = args.Contains("--json");
var iterations = quick ? 15 : 60;
var throughputTasks = quick ? 40 : 200;
var work = Directory.CreateTempSubdirectory("bench-launch-").FullName;
var results = new JsonArray();
var log = json ? Console.Error : Console.Out;

try
{
    var options = new AgentOptions { WorkDir = work, Isolation = "auto" };
    var isolator = Isolators.Create("auto", Isolators.ScopeFor(work));
    using var launcher = new SupervisorLauncher(SupervisorLauncher.DefaultCommand(), options.SupervisorPool);
    var process = new ProcessExecutor(isolator, launcher, options);

    // 1. Bare Process.Start of /bin/true: start → running (Start returned), and start → exit.
    var bare = await MeasureAsync(iterations, async _ =>
    {
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(new ProcessStartInfo("/bin/true") { UseShellExecute = false })!;
        var started = sw.Elapsed.TotalMilliseconds;
        await p.WaitForExitAsync();
        return (started, sw.Elapsed.TotalMilliseconds);
    });
    Add("bare_process_start", new() { ["command"] = "/bin/true" }, bare, null);

    // 2. The process executor (supervisor + cgroups): request → running (handshake), and → exit;
    // with the agent's default pool of pre-started supervisors, and with none (one started per launch).
    foreach (var (scenario, pool) in new[] { ("process_executor", options.SupervisorPool), ("process_executor_no_pool", 0) })
    {
        using var variant = new SupervisorLauncher(SupervisorLauncher.DefaultCommand(), pool);
        var executor = new ProcessExecutor(isolator, variant, options);
        var steps = new List<LaunchSteps>();
        var exec = await MeasureAsync(iterations, async i =>
        {
            var launch = Launch(work, $"p{pool}-{i}", new CommandInfo { Shell = false, Value = "/bin/true" }, null);
            var sw = Stopwatch.StartNew();
            var handle = await executor.StartAsync(launch, CancellationToken.None);
            var started = sw.Elapsed.TotalMilliseconds;
            if (i >= 0)
            {
                steps.Add(handle.Steps);
            }
            var exit = await executor.WaitAsync(handle, CancellationToken.None);
            var total = sw.Elapsed.TotalMilliseconds;
            Check(exit.State == TaskState.TaskFinished, $"process task ended {exit.State}: {exit.Message}");
            executor.Cleanup(handle);
            return (started, total);
        });
        Add(scenario, new() { ["command"] = "/bin/true", ["isolation"] = isolator.Name, ["supervisor_pool"] = pool }, exec, bare);
        // Where the start goes: p50 of each step (see LaunchSteps).
        var stepMetrics = new JsonObject();
        foreach (var (name, pick) in new (string, Func<LaunchSteps, double>)[]
        {
            ("cgroup_create_ms_p50", s => s.CgroupMs), ("spec_write_ms_p50", s => s.SpecMs),
            ("supervisor_spawn_ms_p50", s => s.SpawnMs), ("handshake_ms_p50", s => s.HandshakeMs),
        })
        {
            stepMetrics[name] = Math.Round(P(steps.Select(pick).OrderBy(x => x).ToList(), 0.5), 3);
        }
        results.Add(new JsonObject { ["scenario"] = scenario + "_steps", ["params"] = new JsonObject { ["iterations"] = steps.Count, ["supervisor_pool"] = pool }, ["metrics"] = stepMetrics });
        log.WriteLine($"{scenario}_steps: {stepMetrics.ToJsonString()}");
    }

    // 3. Throughput: launches per second on one agent, 8 in flight.
    var swT = Stopwatch.StartNew();
    var inFlight = new SemaphoreSlim(8);
    await Task.WhenAll(Enumerable.Range(0, throughputTasks).Select(async i =>
    {
        await inFlight.WaitAsync();
        try
        {
            var launch = Launch(work, $"t{i}", new CommandInfo { Shell = false, Value = "/bin/true" }, null);
            var handle = await process.StartAsync(launch, CancellationToken.None);
            var exit = await process.WaitAsync(handle, CancellationToken.None);
            Check(exit.State == TaskState.TaskFinished, $"throughput task ended {exit.State}");
            process.Cleanup(handle);
        }
        finally
        {
            inFlight.Release();
        }
    }));
    var perSecond = throughputTasks / swT.Elapsed.TotalSeconds;
    results.Add(new JsonObject
    {
        ["scenario"] = "process_executor_throughput",
        ["params"] = new JsonObject { ["tasks"] = throughputTasks, ["concurrency"] = 8, ["cores"] = Environment.ProcessorCount },
        ["metrics"] = new JsonObject { ["launches_per_s"] = Math.Round(perSecond, 1) },
    });
    log.WriteLine($"process_executor_throughput: {perSecond:0.0} launches/s ({throughputTasks} tasks, 8 in flight)");

    // 4. OCI executor vs runc run of the same bundle (root only).
    if (isolator is not NoIsolator && File.Exists("/usr/sbin/runc") && File.Exists("/usr/bin/umoci"))
    {
        var layout = BuildImage(work);
        var oci = new OciExecutor(isolator, launcher, options, new ImageStore(Path.Combine(work, "images"), 1L << 30));
        var command = new CommandInfo { Shell = false, Value = "/bin/true" };
        // Warm the image cache (measured separately: first start unpacks).
        var warm = Launch(work, "warm", command, $"oci:{layout}:t");
        var wh = await oci.StartAsync(warm, CancellationToken.None);
        await oci.WaitAsync(wh, CancellationToken.None);
        var bundleTemplate = File.ReadAllText(Path.Combine(wh.RunDir, "bundle", "config.json"));
        oci.Cleanup(wh);

        var ociTimes = await MeasureAsync(iterations, async i =>
        {
            var launch = Launch(work, $"o{i}", command, $"oci:{layout}:t");
            var sw = Stopwatch.StartNew();
            var handle = await oci.StartAsync(launch, CancellationToken.None);
            var started = sw.Elapsed.TotalMilliseconds;
            var exit = await oci.WaitAsync(handle, CancellationToken.None);
            var total = sw.Elapsed.TotalMilliseconds;
            Check(exit.State == TaskState.TaskFinished, $"OCI task ended {exit.State}: {exit.Message}");
            oci.Cleanup(handle);
            return (started, total);
        });
        var runcTimes = await MeasureAsync(iterations, async i =>
        {
            var dir = Path.Combine(work, "runc-bundles", $"r{i}");
            Directory.CreateDirectory(dir);
            var cfg = JsonNode.Parse(bundleTemplate)!;
            cfg["linux"]!["cgroupsPath"] = $"/sched/bench-raw/r{i}";
            File.WriteAllText(Path.Combine(dir, "config.json"), cfg.ToJsonString());
            var psi = new ProcessStartInfo("/usr/sbin/runc") { UseShellExecute = false };
            foreach (var a in new[] { "--root", Path.Combine(work, "runc-raw"), "run", "--bundle", dir, $"raw{i}" })
            {
                psi.ArgumentList.Add(a);
            }
            var sw = Stopwatch.StartNew();
            using var p = Process.Start(psi)!;
            var started = sw.Elapsed.TotalMilliseconds;
            await p.WaitForExitAsync();
            var total = sw.Elapsed.TotalMilliseconds;
            Check(p.ExitCode == 0, $"runc run exited {p.ExitCode}");
            return (started, total);
        });
        Add("runc_run_direct", new() { ["image"] = "busybox (umoci)" }, runcTimes, null);
        Add("oci_executor", new() { ["image"] = "busybox (umoci)", ["runtime"] = "runc" }, ociTimes, runcTimes);
    }
    else
    {
        log.WriteLine("oci scenarios skipped: need root, runc and umoci");
    }
}
finally
{
    foreach (var c in new[] { "cpu", "cpuacct", "memory", "pids", "freezer", "blkio", "devices", "cpuset", "systemd", "unified" })
    {
        foreach (var scope in new[] { $"/sys/fs/cgroup/{c}/sched/bench-raw", $"/sys/fs/cgroup/{c}/sched/{Isolators.ScopeFor(work)}" })
        {
            if (Directory.Exists(scope))
            {
                foreach (var d in Directory.GetDirectories(scope))
                {
                    try { Directory.Delete(d); } catch (IOException) { }
                }
                try { Directory.Delete(scope); } catch (IOException) { }
            }
        }
    }
    Directory.Delete(work, true);
}

if (json)
{
    var doc = new JsonObject
    {
        ["benchmark"] = "Launch",
        ["machine"] = new JsonObject { ["cores"] = Environment.ProcessorCount, ["os"] = Environment.OSVersion.ToString(), ["dotnet"] = Environment.Version.ToString() },
        ["results"] = results,
    };
    Console.WriteLine(doc.ToJsonString());
}
return 0;

void Add(string scenario, JsonObject parameters, List<(double Started, double Total)> times, List<(double Started, double Total)>? baseline)
{
    var started = times.Select(t => t.Started).OrderBy(x => x).ToList();
    var total = times.Select(t => t.Total).OrderBy(x => x).ToList();
    parameters["iterations"] = times.Count;
    var metrics = new JsonObject
    {
        ["start_ms_p50"] = Math.Round(P(started, 0.5), 2),
        ["start_ms_p99"] = Math.Round(P(started, 0.99), 2),
        ["start_to_exit_ms_p50"] = Math.Round(P(total, 0.5), 2),
    };
    if (baseline is not null)
    {
        var b = baseline.Select(t => t.Total).OrderBy(x => x).ToList();
        metrics["ratio_start_to_exit_vs_baseline"] = Math.Round(P(total, 0.5) / P(b, 0.5), 2);
    }
    results.Add(new JsonObject { ["scenario"] = scenario, ["params"] = parameters, ["metrics"] = metrics });
    log.WriteLine($"{scenario,-28} start p50 {P(started, 0.5),8:0.00} ms  p99 {P(started, 0.99),8:0.00} ms  start→exit p50 {P(total, 0.5),8:0.00} ms");
}

static double P(List<double> sorted, double q) => sorted.Count == 0 ? 0 : sorted[Math.Min(sorted.Count - 1, (int)(q * sorted.Count))];

static async Task<List<(double, double)>> MeasureAsync(int n, Func<int, Task<(double, double)>> run)
{
    await run(-1); // warm-up
    var list = new List<(double, double)>();
    for (var i = 0; i < n; i++)
    {
        list.Add(await run(i));
    }
    return list;
}

static TaskLaunch Launch(string work, string id, CommandInfo command, string? image)
{
    var task = new TaskInfo { TaskId = id, Command = command, Resources = { new Resource { Name = "cpus", Scalar = 0.5 }, new Resource { Name = "mem", Scalar = 64 } } };
    if (image is not null)
    {
        task.Container = new ContainerInfo { Type = ContainerInfo.Types.Type.Oci, Oci = new OciInfo { Image = image } };
    }
    var sandbox = Path.Combine(work, "sandboxes", "fw", id + "-" + Guid.NewGuid().ToString("N")[..6]);
    Directory.CreateDirectory(sandbox);
    var cid = "c" + Guid.NewGuid().ToString("N")[..20];
    return new TaskLaunch(new FrameworkInfo { Id = "fw" }, task, sandbox, Path.Combine(work, "meta", "runs", cid), cid);
}

static void Check(bool ok, string message)
{
    if (!ok)
    {
        throw new InvalidOperationException(message);
    }
}

static string BuildImage(string work)
{
    var layout = Path.Combine(work, "image");
    var bundle = Path.Combine(work, "image-bundle");
    Run("umoci", "init", "--layout", layout);
    Run("umoci", "new", "--image", layout + ":t");
    Run("umoci", "unpack", "--image", layout + ":t", bundle);
    var bin = Path.Combine(bundle, "rootfs", "bin");
    Directory.CreateDirectory(bin);
    File.Copy("/bin/busybox", Path.Combine(bin, "busybox"));
    foreach (var applet in new[] { "sh", "true" })
    {
        File.CreateSymbolicLink(Path.Combine(bin, applet), "busybox");
    }
    Run("umoci", "repack", "--image", layout + ":t", bundle);
    Directory.Delete(bundle, true);
    return layout;
}

static void Run(string program, params string[] args)
{
    var psi = new ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true };
    foreach (var a in args)
    {
        psi.ArgumentList.Add(a);
    }
    using var p = Process.Start(psi)!;
    p.StandardOutput.ReadToEnd();
    var err = p.StandardError.ReadToEnd();
    p.WaitForExit();
    Check(p.ExitCode == 0, $"{program} failed: {err}");
}
