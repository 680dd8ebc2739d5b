using Grpc.Net.Client;
using System.Diagnostics.Tracing;
using System.Globalization;
using Microsoft.Diagnostics.NETCore.Client;
using Sched.V1;
using Scheduler.Cli.Cluster;
using Scheduler.Protocol;
using Grpc.Core;
using Scheduler.Channels;

namespace Scheduler.Bench.Load;

/// <summary>A real master process (<c>dotnet schedctl.dll master run</c>) in a temp work dir,
/// with its CPU time and memory read from /proc.</summary>
internal sealed class MasterProcess : IAsyncDisposable
{
    private readonly DaemonProcess _process;
    private readonly GrpcChannel _channel;

    private MasterProcess(DaemonProcess process, string workDir, string address, DevCredentials? credentials)
    {
        _process = process;
        WorkDir = workDir;
        Address = address;
        Credentials = credentials;
        _channel = GrpcChannels.ForAddress(address, OperatorChannel()); // one connection for every health reading
    }

    /// <summary>The credentials of a secure master (TLS, tokens, ACLs, as <c>dev up</c> makes
    /// them); null for a plaintext one that serves anonymous callers.</summary>
    public DevCredentials? Credentials { get; }

    /// <summary>Channel settings of the operator (and of the load frameworks): the admin token over TLS when secure.</summary>
    public GrpcChannelSettings OperatorChannel() => Credentials?.AdminChannel() ?? new GrpcChannelSettings();

    /// <summary>Channel settings of the simulated agents: the agents' token and client certificate when secure.</summary>
    public GrpcChannelSettings? AgentChannel() => Credentials is null ? null : new GrpcChannelSettings
    {
        BearerToken = File.ReadAllText(Credentials.AgentTokenFile).Trim(),
        Tls = Scheduler.Channels.Tls.ClientTls.FromFiles(Credentials.DaemonTls("agent")),
    };

    public string Address { get; }

    public string WorkDir { get; }

    public int Pid => _process.Pid;

    /// <param name="secure">Run with TLS, a token key and ACLs (credentials made in the work dir).</param>
    public static async Task<MasterProcess> StartAsync(IEnumerable<string> extraArgs, bool secure = false)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "schedctl.dll");
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException($"schedctl.dll not found next to the benchmark ({dll}); build bench/Load (it references src/Cli).");
        }
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var workDir = Path.Combine(Path.GetTempPath(), "sched-load-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(workDir);
        Directory.CreateDirectory(Path.Combine(workDir, "master"));
        var credentials = secure ? DevCredentials.Ensure(Path.Combine(workDir, "credentials")) : null;
        var master = credentials?.DaemonTls("master");
        var args = new List<string>
        {
            "master", "run", "--listen", "127.0.0.1:0", "--work-dir", Path.Combine(workDir, "master"),
            "--watch-parent", Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
        };
        args.AddRange(credentials is null ? ["--insecure-allow-anonymous"] :
            ["--token-key", credentials.TokenKey, "--acls", credentials.Acls, "--tls-cert", master!.Certificate!, "--tls-key", master.Key!, "--tls-ca", credentials.CaFile]);
        args.AddRange(extraArgs);
        var process = DaemonProcess.Start("master", args, Path.Combine(workDir, "master.log"), command: [dotnet, dll]);
        var address = await process.WaitForAsync(process.Listening, "its listening address", TimeSpan.FromSeconds(60), CancellationToken.None);
        return new MasterProcess(process, workDir, address, credentials);
    }

    /// <summary>User + system CPU seconds of the master so far.</summary>
    public double CpuSeconds()
    {
        var stat = File.ReadAllText($"/proc/{Pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return ticks / 100.0; // USER_HZ is 100 on Linux
    }

    /// <summary>A /proc/PID/status memory field (VmRSS, VmHWM) in bytes.</summary>
    public long MemoryBytes(string field)
    {
        foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
            {
                var kb = line[(field.Length + 1)..].Trim().Split(' ')[0];
                return long.Parse(kb, CultureInfo.InvariantCulture) * 1024;
            }
        }
        return 0;
    }

    /// <summary>The master's own memory report (Operator.GetHealth): RSS and GC heap figures.</summary>
    public async Task<ProcessMemory> ReportedMemoryAsync()
    {
        var health = await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest()).ResponseAsync.WaitAsync(TimeSpan.FromSeconds(30));
        return health.Memory ?? new ProcessMemory();
    }

    /// <summary>
    /// The master's live managed bytes: asks its runtime for a full blocking collection over the
    /// diagnostics IPC channel (an EventPipe session with the GCHeapCollect keyword, as heap-dump
    /// tools do), waits until the master reports that collection, and returns heap size minus
    /// fragmentation. Garbage not yet collected is therefore not counted as per-task or per-agent cost.
    /// </summary>
    public async Task<long> LiveHeapBytesAsync()
    {
        var before = await ReportedMemoryAsync();
        var client = new DiagnosticsClient(Pid);
        const long gcHeapCollect = 0x800000;
        using var session = client.StartEventPipeSession(
            [new EventPipeProvider("Microsoft-Windows-DotNETRuntime", EventLevel.Informational, gcHeapCollect)], requestRundown: false);
        var drain = Task.Run(() =>
        {
            var buffer = new byte[64 * 1024];
            try
            {
                while (session.EventStream.Read(buffer, 0, buffer.Length) > 0)
                {
                }
            }
            catch (IOException)
            {
            }
            catch (ObjectDisposedException)
            {
            }
        });
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (true)
            {
                var now = await ReportedMemoryAsync();
                if (now.GcFullCollections > before.GcFullCollections)
                {
                    return (long)(now.GcHeapBytes - Math.Min(now.GcHeapBytes, now.GcFragmentedBytes));
                }
                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"the master (pid {Pid}) did not report a full collection within 60 s of the request");
                }
                await Task.Delay(100);
            }
        }
        finally
        {
            await session.StopAsync(CancellationToken.None);
            await drain;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _channel.Dispose();
        await _process.StopAsync(TimeSpan.FromSeconds(10));
        await _process.DisposeAsync();
        try
        {
            Directory.Delete(WorkDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
