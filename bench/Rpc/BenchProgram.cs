using Grpc.Net.Client;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sched.V1;
using Scheduler.Protocol;
using Grpc.Core;
using Scheduler.Channels;

namespace Scheduler.Bench.Rpc;

/// <summary>
/// Unary calls/s, server-streamed messages/s and unary latency at ~50% of peak, with our client
/// against our server and against the reference C++ gRPC server (same client, same load).
/// </summary>
internal static class BenchProgram
{
    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Contains("--serve"))
        {
            var auth = Array.IndexOf(args, "--auth");
            var tls = Array.IndexOf(args, "--tls");
            return await BenchServer.ServeAsync(auth >= 0 && auth + 1 < args.Length ? args[auth + 1] : null, tls >= 0 && tls + 1 < args.Length ? args[tls + 1] : null);
        }
        var quick = args.Contains("--quick");
        var json = args.Contains("--json");
        var repoRoot = FindRepoRoot();
        var seconds = quick ? 2 : 5;
        var rounds = quick ? 2 : 3;
        // --rate N: run the latency scenario at N calls/s instead of half the measured peak.
        var rateIndex = Array.IndexOf(args, "--rate");
        double? fixedRate = rateIndex >= 0 && rateIndex + 1 < args.Length ? double.Parse(args[rateIndex + 1], System.Globalization.CultureInfo.InvariantCulture) : null;
        if (args.Contains("--latency-only"))
        {
            rounds = 0;
        }
        // --unary-only: only the unary rounds (no streaming, no latency); --no-cpp: without the
        // reference C++ server. Together they compare plain, token and TLS+token quickly.
        var unaryOnly = args.Contains("--unary-only");
        var withCpp = !args.Contains("--no-cpp");
        var roundsIndex = Array.IndexOf(args, "--rounds");
        if (roundsIndex >= 0 && roundsIndex + 1 < args.Length)
        {
            rounds = int.Parse(args[roundsIndex + 1], System.Globalization.CultureInfo.InvariantCulture);
        }
        const int concurrency = 64;
        const int streams = 4;
        var events = quick ? 100_000 : 400_000;

        var targets = new List<(string Name, ServerProcess Server)>();
        string? cppError = null;
        var self = SelfCommand();
        targets.Add(("ours", await ServerProcess.StartAsync(self.File, [.. self.Args, "--serve"])));
        // The same server requiring a bearer token on every call, as a master does.
        var keyDir = Directory.CreateTempSubdirectory("sched-bench-rpc-");
        var keyFile = Path.Combine(keyDir.FullName, "token-key.pem");
        string token;
        using (var keys = Scheduler.Security.TokenKeys.LoadOrCreate(keyFile))
        {
            token = keys.Issue("bench", TimeSpan.FromHours(2), DateTimeOffset.UtcNow);
        }
        targets.Add(("ours+auth", await ServerProcess.StartAsync(self.File, [.. self.Args, "--serve", "--auth", keyFile])));
        // --token-header: also the plain server sent the token it does not check (what the
        // header's bytes alone cost, apart from checking it).
        if (args.Contains("--token-header"))
        {
            targets.Add(("ours+hdr", await ServerProcess.StartAsync(self.File, [.. self.Args, "--serve"])));
        }
        // And with TLS too, on a throwaway CA: the secure path a dev cluster runs.
        using (var ca = Scheduler.Channels.Tls.CertificateIssuer.Create("bench CA", DateTimeOffset.UtcNow, TimeSpan.FromDays(1)))
        using (var serverCertificate = ca.IssueForLoopback("bench"))
        {
            ca.WriteAuthority(Path.Combine(keyDir.FullName, "ca.pem"));
            Scheduler.Channels.Tls.CertificateIssuer.WritePem(serverCertificate, Path.Combine(keyDir.FullName, "server.pem"), Path.Combine(keyDir.FullName, "server-key.pem"));
        }
        var clientTls = Scheduler.Channels.Tls.ClientTls.FromFiles(Path.Combine(keyDir.FullName, "ca.pem"));
        targets.Add(("ours+tls+auth", await ServerProcess.StartAsync(self.File, [.. self.Args, "--serve", "--auth", keyFile, "--tls", keyDir.FullName])));
        var (cppPath, err) = withCpp ? await CppServer.BuildAsync(repoRoot) : (null, "not run (--no-cpp)");
        if (cppPath is not null)
        {
            targets.Add(("cpp", await ServerProcess.StartAsync(cppPath, [])));
        }
        else
        {
            cppError = err;
            if (withCpp)
            {
                Console.Error.WriteLine("C++ reference server unavailable: " + err);
            }
        }

        var unary = new Dictionary<string, double>();
        var streaming = new Dictionary<string, double>();
        var serverCpuUs = new Dictionary<string, double>();
        var clientCpuUs = new Dictionary<string, double>();
        var latency = new List<(string Name, double Fraction, double Rate, double P50, double P99, double Achieved)>();
        double[] fractions = quick ? [0.5] : [0.1, 0.25, 0.5];
        var channels = targets.ToDictionary(t => t.Name, t => GrpcChannels.ForAddress("127.0.0.1:" + t.Server.Port, new GrpcChannelSettings
        {
            BearerToken = t.Name.EndsWith("+auth", StringComparison.Ordinal) || t.Name == "ours+hdr" ? token : null,
            Tls = t.Name.Contains("+tls", StringComparison.Ordinal) ? clientTls : null,
        }));
        try
        {
            foreach (var (name, channel) in channels)
            {
                await WarmUpAsync(channel);
            }
            // Rounds alternate between the servers so that load from other processes on this
            // machine hits both alike; the best round of each counts.
            for (var round = 1; round <= rounds; round++)
            {
                foreach (var (name, channel) in channels)
                {
                    var server = targets.First(t => t.Name == name).Server;
                    var serverCpu0 = server.CpuSeconds();
                    var clientCpu0 = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
                    var u = await UnaryThroughputAsync(channel, concurrency, TimeSpan.FromSeconds(seconds));
                    // CPU time per call: unlike calls/s, it hardly changes when other processes
                    // compete for the cores, so it shows what authentication and TLS cost.
                    var calls = u * seconds;
                    if (calls > 0)
                    {
                        var serverUs = (server.CpuSeconds() - serverCpu0) * 1e6 / calls;
                        var clientUs = (Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds - clientCpu0) * 1e6 / calls;
                        serverCpuUs[name] = Math.Min(serverCpuUs.GetValueOrDefault(name, double.MaxValue), serverUs);
                        clientCpuUs[name] = Math.Min(clientCpuUs.GetValueOrDefault(name, double.MaxValue), clientUs);
                        Log($"round {round} {name}: {serverUs:F1} µs server CPU and {clientUs:F1} µs client CPU per call");
                    }
                    unary[name] = Math.Max(unary.GetValueOrDefault(name), u);
                    Log($"round {round} {name}: unary {u:F0} calls/s (concurrency {concurrency})");
                    if (unaryOnly)
                    {
                        continue;
                    }
                    var st = await StreamingThroughputAsync(channel, streams, events);
                    streaming[name] = Math.Max(streaming.GetValueOrDefault(name), st);
                    Log($"round {round} {name}: streaming {st:F0} msgs/s ({streams} streams x {events})");
                }
            }
            // Open-loop latency at fractions of each server's own closed-loop peak (50% is the
            // target figure; the lower ones show where queueing starts on this machine).
            foreach (var (name, channel) in channels.Where(_ => !unaryOnly))
            {
                foreach (var fraction in fixedRate is null ? fractions : [0])
                {
                    var rate = fixedRate ?? unary.GetValueOrDefault(name) * fraction;
                    var (p50, p99, achieved) = await LatencyAtRateAsync(channel, rate, TimeSpan.FromSeconds(seconds));
                    latency.Add((name, fraction, rate, p50, p99, achieved));
                    Log($"{name}: latency at {rate:F0}/s ({fraction:P0} of peak; achieved {achieved:F0}/s): p50 {p50:F3} ms, p99 {p99:F3} ms");
                }
            }
        }
        finally
        {
            foreach (var channel in channels.Values)
            {
                channel.Dispose();
            }
            foreach (var (_, server) in targets)
            {
                await server.DisposeAsync();
            }
            keyDir.Delete(recursive: true);
        }

        var results = new JsonArray();
        var unaryMetrics = new JsonObject { ["ours_calls_per_s"] = Round(unary.GetValueOrDefault("ours")) };
        var streamMetrics = new JsonObject { ["ours_msgs_per_s"] = Round(streaming.GetValueOrDefault("ours")) };
        if (unary.TryGetValue("ours+auth", out var authUnary))
        {
            unaryMetrics["ours_auth_calls_per_s"] = Round(authUnary);
            unaryMetrics["auth_ratio_vs_ours"] = unary.GetValueOrDefault("ours") > 0 ? Math.Round(authUnary / unary["ours"], 3) : 0;
            streamMetrics["ours_auth_msgs_per_s"] = Round(streaming.GetValueOrDefault("ours+auth"));
            streamMetrics["auth_ratio_vs_ours"] = streaming.GetValueOrDefault("ours") > 0 ? Math.Round(streaming.GetValueOrDefault("ours+auth") / streaming["ours"], 3) : 0;
        }
        if (unary.TryGetValue("ours+tls+auth", out var tlsUnary))
        {
            unaryMetrics["ours_tls_auth_calls_per_s"] = Round(tlsUnary);
            unaryMetrics["tls_auth_ratio_vs_ours"] = unary.GetValueOrDefault("ours") > 0 ? Math.Round(tlsUnary / unary["ours"], 3) : 0;
            streamMetrics["ours_tls_auth_msgs_per_s"] = Round(streaming.GetValueOrDefault("ours+tls+auth"));
            streamMetrics["tls_auth_ratio_vs_ours"] = streaming.GetValueOrDefault("ours") > 0 ? Math.Round(streaming.GetValueOrDefault("ours+tls+auth") / streaming["ours"], 3) : 0;
        }
        foreach (var (name, us) in serverCpuUs)
        {
            var key = name.Replace("+", "_", StringComparison.Ordinal);
            unaryMetrics[key + "_server_cpu_us_per_call"] = Math.Round(us, 1);
            unaryMetrics[key + "_client_cpu_us_per_call"] = Math.Round(clientCpuUs.GetValueOrDefault(name), 1);
        }
        if (serverCpuUs.TryGetValue("ours", out var plainUs) && plainUs > 0)
        {
            foreach (var name in new[] { "ours+auth", "ours+tls+auth" })
            {
                if (serverCpuUs.TryGetValue(name, out var us))
                {
                    unaryMetrics[name.Replace("+", "_", StringComparison.Ordinal)[5..] + "_server_cpu_ratio_vs_ours"] = Math.Round(us / plainUs, 3);
                }
            }
        }
        if (unary.TryGetValue("cpp", out var cppUnary))
        {
            unaryMetrics["cpp_calls_per_s"] = Round(cppUnary);
            unaryMetrics["ratio_vs_cpp"] = cppUnary > 0 ? Math.Round(unary.GetValueOrDefault("ours") / cppUnary, 3) : 0;
            streamMetrics["cpp_msgs_per_s"] = Round(streaming.GetValueOrDefault("cpp"));
            streamMetrics["ratio_vs_cpp"] = streaming.GetValueOrDefault("cpp") > 0 ? Math.Round(streaming.GetValueOrDefault("ours") / streaming["cpp"], 3) : 0;
        }
        else
        {
            unaryMetrics["cpp_error"] = cppError;
            streamMetrics["cpp_error"] = cppError;
        }
        results.Add(Result("unary_throughput", new JsonObject { ["concurrency"] = concurrency, ["duration_s"] = seconds, ["rounds"] = rounds, ["connections"] = 1, ["method"] = "Operator.GetHealth" }, unaryMetrics));
        results.Add(Result("server_streaming_throughput", new JsonObject { ["streams"] = streams, ["events_per_stream"] = events, ["rounds"] = rounds, ["method"] = "Scheduler.Subscribe", ["message"] = "Event{heartbeat}" }, streamMetrics));
        foreach (var l in latency)
        {
            var scenario = l.Fraction == 0.5 ? "unary_latency_at_half_peak" : "unary_latency_at_fraction_of_peak";
            results.Add(Result(scenario, new JsonObject { ["server"] = l.Name, ["fraction_of_peak"] = l.Fraction, ["target_rate_per_s"] = Round(l.Rate), ["duration_s"] = seconds },
                new JsonObject { ["achieved_calls_per_s"] = Round(l.Achieved), ["latency_ms_p50"] = Math.Round(l.P50, 3), ["latency_ms_p99"] = Math.Round(l.P99, 3) }));
        }
        var doc = new JsonObject
        {
            ["benchmark"] = "Rpc",
            ["machine"] = new JsonObject
            {
                ["cores"] = Environment.ProcessorCount,
                ["os"] = System.Runtime.InteropServices.RuntimeInformation.OSDescription,
                ["runtime"] = System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription,
                ["quick"] = quick,
            },
            ["results"] = results,
        };
        if (json)
        {
            Console.WriteLine(doc.ToJsonString());
        }
        else
        {
            Console.WriteLine(doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
        return 0;
    }

    private static double Round(double v) => Math.Round(v, 1);

    private static JsonObject Result(string scenario, JsonObject parameters, JsonObject metrics)
        => new() { ["scenario"] = scenario, ["params"] = parameters, ["metrics"] = metrics };

    private static void Log(string line) => Console.Error.WriteLine(line);

    private static async Task WarmUpAsync(GrpcChannel channel)
    {
        var r = await channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest());
        if (!r.Healthy)
        {
            throw new InvalidOperationException("bench server answered an unhealthy GetHealth");
        }
        // Long enough for tiered JIT to reach optimised code in the server process.
        await UnaryThroughputAsync(channel, 16, TimeSpan.FromSeconds(3));
        await StreamingThroughputAsync(channel, 1, 50_000);
    }

    private static async Task<double> UnaryThroughputAsync(GrpcChannel channel, int concurrency, TimeSpan duration)
    {
        var request = new GetHealthRequest();
        var stop = false;
        var counts = new long[concurrency];
        var sw = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, concurrency).Select(async w =>
        {
            await Task.Yield();
            while (!Volatile.Read(ref stop))
            {
                var r = await channel.AsyncUnaryCall(OperatorMethods.GetHealth, request).ResponseAsync.ConfigureAwait(false);
                if (!r.Healthy)
                {
                    throw new InvalidOperationException("bad response");
                }
                counts[w]++;
            }
        }).ToArray();
        await Task.Delay(duration);
        Volatile.Write(ref stop, true);
        await Task.WhenAll(workers);
        return counts.Sum() / sw.Elapsed.TotalSeconds;
    }

    private static async Task<double> StreamingThroughputAsync(GrpcChannel channel, int streams, int events)
    {
        var sw = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, streams).Select(async _ =>
        {
            var request = new SubscribeRequest { FrameworkInfo = new FrameworkInfo { Name = events.ToString(System.Globalization.CultureInfo.InvariantCulture) } };
            using var call = channel.AsyncServerStreamingCall(SchedulerMethods.Subscribe, request);
            var n = 0L;
            while (await call.ResponseStream.MoveNext().ConfigureAwait(false))
            {
                n++;
            }
            if (n != events)
            {
                throw new InvalidOperationException($"stream delivered {n} of {events} events");
            }
            return n;
        }).ToArray();
        var total = (await Task.WhenAll(tasks)).Sum();
        return total / sw.Elapsed.TotalSeconds;
    }

    /// <summary>Open-loop load: calls issued on a fixed schedule at <paramref name="rate"/>/s by
    /// a few pacers (1 ms ticks), latency measured per call from issue to response.</summary>
    private static async Task<(double P50, double P99, double Achieved)> LatencyAtRateAsync(GrpcChannel channel, double rate, TimeSpan duration)
    {
        const int pacers = 4;
        var request = new GetHealthRequest();
        var perPacer = rate / pacers;
        var max = (int)(perPacer * duration.TotalSeconds) + 16;
        var latencies = new double[pacers][];
        var sw = Stopwatch.StartNew();
        var done = 0;
        var failures = new Dictionary<string, int>();
        var runs = Enumerable.Range(0, pacers).Select(p => Task.Run(async () =>
        {
            var mine = new double[max];
            latencies[p] = mine;
            var pending = new List<Task>(max);
            var issued = 0;
            while (sw.Elapsed < duration && issued < max)
            {
                var due = Math.Min(max, (long)(sw.Elapsed.TotalSeconds * perPacer));
                while (issued < due)
                {
                    var index = issued++;
                    var start = Stopwatch.GetTimestamp();
                    pending.Add(channel.AsyncUnaryCall(OperatorMethods.GetHealth, request).ResponseAsync.ContinueWith(t =>
                    {
                        if (t.IsCompletedSuccessfully)
                        {
                            mine[index] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                            Interlocked.Increment(ref done);
                        }
                        else
                        {
                            var code = t.Exception?.InnerException is RpcException rpc ? rpc.StatusCode.ToString() : t.Exception?.InnerException?.GetType().Name ?? "cancelled";
                            lock (failures)
                            {
                                failures[code] = failures.GetValueOrDefault(code) + 1;
                            }
                        }
                    }, TaskContinuationOptions.ExecuteSynchronously));
                }
                await Task.Delay(1);
            }
            await Task.WhenAll(pending);
        })).ToArray();
        await Task.WhenAll(runs);
        var elapsed = sw.Elapsed.TotalSeconds;
        if (failures.Count > 0)
        {
            Log("latency run failures: " + string.Join(", ", failures.Select(f => f.Key + "=" + f.Value)));
        }
        var sorted = latencies.SelectMany(l => l).Where(l => l > 0).Order().ToArray();
        if (sorted.Length == 0)
        {
            throw new InvalidOperationException("no call completed in the latency run");
        }
        return (sorted[(int)(sorted.Length * 0.5)], sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * 0.99))], done / elapsed);
    }

    private static (string File, string[] Args) SelfCommand()
    {
        var path = Environment.ProcessPath!;
        if (Path.GetFileNameWithoutExtension(path) == "dotnet")
        {
            return (path, [typeof(BenchProgram).Assembly.Location]);
        }
        return (path, []);
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "bench", "Rpc", "cpp", "build.sh")))
            {
                return dir.FullName;
            }
        }
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "bench", "Rpc", "cpp", "build.sh")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("cannot find the repository root (bench/Rpc/cpp/build.sh)");
    }
}
