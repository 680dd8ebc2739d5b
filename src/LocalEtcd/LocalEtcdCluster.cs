using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Scheduler.LocalEtcd;

/// <summary>
/// Real <c>etcd</c> processes on loopback, for tests, <c>schedctl dev up --masters 3</c> and
/// benchmarks: N members with dynamic ports, data dirs under one directory, started together and
/// awaited until healthy; members can be killed, restarted, paused (SIGSTOP) and resumed.
/// </summary>
public sealed class LocalEtcdCluster : IAsyncDisposable
{
    private const int SigStop = 19;
    private const int SigCont = 18;

    // Members still running when the process exits without disposing the cluster are killed.
    private static readonly ConcurrentDictionary<int, Process> LiveMembers = new();

    private readonly LocalEtcdClusterOptions _options;
    private readonly bool _ownsDirectory;
    private readonly Member[] _members;
    private readonly HttpClient _http;

    static LocalEtcdCluster()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (var p in LiveMembers.Values)
            {
                try
                {
                    p.Kill();
                }
                catch (InvalidOperationException)
                {
                }
            }
        };
    }

    private LocalEtcdCluster(LocalEtcdClusterOptions options, string directory, bool ownsDirectory, string binary)
    {
        _options = options;
        var scheme = options.TlsCertificateFile is null ? "http" : "https";
        var handler = new HttpClientHandler();
        if (options.TlsCertificateFile is not null)
        {
            // Health probes trust exactly the cluster's own certificate.
            using var expected = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(options.TlsCertificateFile, options.TlsKeyFile);
            var thumbprint = expected.Thumbprint;
            handler.ServerCertificateCustomValidationCallback = (_, cert, _, _) => cert?.Thumbprint == thumbprint;
        }
        _http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(2) };
        Directory = directory;
        _ownsDirectory = ownsDirectory;
        Binary = binary;
        var ports = FreePorts(options.Members * 2);
        var token = "sched-" + Guid.NewGuid().ToString("N")[..12];
        _members = Enumerable.Range(0, options.Members).Select(i => new Member(
            $"m{i}", $"{scheme}://127.0.0.1:{ports[2 * i]}", $"http://127.0.0.1:{ports[2 * i + 1]}", Path.Combine(directory, $"m{i}"))).ToArray();
        InitialCluster = string.Join(",", _members.Select(m => $"{m.Name}={m.PeerUrl}"));
        ClusterToken = token;
    }

    /// <summary>The etcd executable used.</summary>
    public string Binary { get; }

    /// <summary>Holds the members' data dirs (<c>m0</c>, <c>m1</c>…) and logs (<c>m0.log</c>…).</summary>
    public string Directory { get; }

    /// <summary>Client endpoints, one per member in member order: <c>127.0.0.1:port</c>, or <c>https://127.0.0.1:port</c> with TLS.</summary>
    public IReadOnlyList<string> Endpoints => _members.Select(m => m.ClientUrl.StartsWith("http://", StringComparison.Ordinal) ? m.ClientUrl["http://".Length..] : m.ClientUrl).ToArray();

    public int Count => _members.Length;

    private string InitialCluster { get; }

    private string ClusterToken { get; }

    /// <summary>
    /// Finds etcd (PATH, then /usr/bin/etcd), starts the members and waits until all are healthy.
    /// Throws <see cref="EtcdNotInstalledException"/> when there is no etcd binary.
    /// </summary>
    public static async Task<LocalEtcdCluster> StartAsync(LocalEtcdClusterOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new LocalEtcdClusterOptions();
        if (options.Members < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Members, "A cluster needs at least one member.");
        }
        var binary = FindBinary();
        var owns = options.BaseDirectory is null;
        var directory = options.BaseDirectory ?? Path.Combine(Path.GetTempPath(), "sched-etcd-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(directory);
        var cluster = new LocalEtcdCluster(options, directory, owns, binary);
        try
        {
            for (var i = 0; i < cluster.Count; i++)
            {
                cluster.Launch(i, existing: false);
            }
            await Task.WhenAll(Enumerable.Range(0, cluster.Count).Select(i => cluster.WaitHealthyAsync(i, cancellationToken))).ConfigureAwait(false);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The etcd binary on PATH or at /usr/bin/etcd; throws a clear error when there is none.</summary>
    public static string FindBinary()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, "etcd");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        if (File.Exists("/usr/bin/etcd"))
        {
            return "/usr/bin/etcd";
        }
        throw new EtcdNotInstalledException(
            "The etcd binary was not found on PATH or at /usr/bin/etcd. Install etcd (Debian/Ubuntu: apt-get install etcd-server) or put it on PATH.");
    }

    /// <summary>Client endpoint of member <paramref name="index"/>.</summary>
    public string Endpoint(int index) => Endpoints[index];

    /// <summary>Whether member <paramref name="index"/>'s process runs (paused members run).</summary>
    public bool IsRunning(int index) => _members[index].Process is { HasExited: false };

    /// <summary>Process id of member <paramref name="index"/>, or null when it is not running.</summary>
    public int? ProcessId(int index) => IsRunning(index) ? _members[index].Process!.Id : null;

    /// <summary>The name of member <paramref name="index"/> (<c>m0</c>, <c>m1</c>…).</summary>
    public string MemberName(int index) => _members[index].Name;

    /// <summary>The log file of member <paramref name="index"/>.</summary>
    public string LogFile(int index) => Path.Combine(Directory, _members[index].Name + ".log");

    /// <summary>The last lines member <paramref name="index"/> wrote (at most 20).</summary>
    public string RecentOutput(int index) => Tail(_members[index]);

    /// <summary>Completes with the exit code of member <paramref name="index"/>'s current process
    /// when it exits, a kill by this cluster included (-1 when the code cannot be read).</summary>
    public Task<int> Exited(int index) => _members[index].Exit.Task;

    /// <summary>Kills member <paramref name="index"/> (SIGKILL) and waits for it to exit.</summary>
    public async Task KillAsync(int index)
    {
        var m = _members[index];
        if (m.Process is not { } p)
        {
            return;
        }
        m.Process = null;
        await StopProcessAsync(p).ConfigureAwait(false);
    }

    /// <summary>Starts member <paramref name="index"/> again on its data dir and waits until it is healthy.</summary>
    public async Task RestartAsync(int index, CancellationToken cancellationToken = default)
    {
        await KillAsync(index).ConfigureAwait(false);
        Launch(index, existing: true);
        await WaitHealthyAsync(index, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Freezes member <paramref name="index"/> (SIGSTOP): its sockets stay open but it answers nothing.
    /// Returns once every thread of the member is stopped, so nothing it answers afterwards was sent after the pause.
    /// </summary>
    public void Pause(int index)
    {
        Signal(index, SigStop);
        var pid = _members[index].Process!.Id;
        var deadline = Stopwatch.StartNew();
        while (!AllThreadsStopped(pid))
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(10))
            {
                throw new TimeoutException($"etcd member {_members[index].Name} (pid {pid}) did not stop within 10 s of SIGSTOP.");
            }
            Thread.Sleep(1);
        }
    }

    // A thread's state is the field after the parenthesised command name in /proc/PID/task/TID/stat: 'T' when stopped.
    private static bool AllThreadsStopped(int pid)
    {
        try
        {
            foreach (var task in System.IO.Directory.EnumerateDirectories($"/proc/{pid}/task"))
            {
                string stat;
                try
                {
                    stat = File.ReadAllText(Path.Combine(task, "stat"));
                }
                catch (IOException)
                {
                    continue; // the thread exited
                }
                var close = stat.LastIndexOf(')');
                if (close < 0 || close + 2 >= stat.Length || stat[close + 2] is not ('T' or 't'))
                {
                    return false;
                }
            }
            return true;
        }
        catch (DirectoryNotFoundException)
        {
            return true; // the process is gone: it answers nothing either
        }
    }

    /// <summary>Continues a paused member (SIGCONT).</summary>
    public void Resume(int index) => Signal(index, SigCont);

    /// <summary>Whether member <paramref name="index"/> reports itself healthy (has a leader and serves reads).</summary>
    public async Task<bool> IsHealthyAsync(int index, CancellationToken cancellationToken = default)
    {
        try
        {
            var body = await _http.GetStringAsync(new Uri(_members[index].ClientUrl + "/health"), cancellationToken).ConfigureAwait(false);
            return body.Contains("\"health\":\"true\"", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>Waits until member <paramref name="index"/> is healthy; throws with the tail of its log on timeout or exit.</summary>
    public async Task WaitHealthyAsync(int index, CancellationToken cancellationToken = default)
    {
        var m = _members[index];
        var started = Stopwatch.StartNew();
        var delay = TimeSpan.FromMilliseconds(20);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (m.Process is not { } p || p.HasExited)
            {
                throw new InvalidOperationException($"etcd member {m.Name} exited while starting. Last log lines:\n{Tail(m)}");
            }
            if (await IsHealthyAsync(index, cancellationToken).ConfigureAwait(false))
            {
                return;
            }
            if (started.Elapsed > _options.StartTimeout)
            {
                throw new TimeoutException($"etcd member {m.Name} ({m.ClientUrl}) was not healthy after {_options.StartTimeout.TotalSeconds:0} s. Last log lines:\n{Tail(m)}");
            }
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromMilliseconds(Math.Min(200, delay.TotalMilliseconds * 2));
        }
    }

    private void Launch(int index, bool existing)
    {
        var m = _members[index];
        var psi = new ProcessStartInfo(Binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        string[] args =
        [
            "--name", m.Name,
            "--data-dir", m.DataDir,
            "--listen-client-urls", m.ClientUrl,
            "--advertise-client-urls", m.ClientUrl,
            "--listen-peer-urls", m.PeerUrl,
            "--initial-advertise-peer-urls", m.PeerUrl,
            "--initial-cluster", InitialCluster,
            "--initial-cluster-state", existing ? "existing" : "new",
            "--initial-cluster-token", ClusterToken,
            "--heartbeat-interval", ((int)_options.HeartbeatInterval.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
            "--election-timeout", ((int)_options.ElectionTimeout.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
            "--logger", "zap",
            "--log-outputs", "stderr",
            "--log-level", "warn",
        ];
        IEnumerable<string> tls = _options.TlsCertificateFile is null ? [] : ["--cert-file", _options.TlsCertificateFile, "--key-file", _options.TlsKeyFile ?? ""];
        foreach (var a in args.Concat(tls).Concat(_options.ExtraArguments))
        {
            psi.ArgumentList.Add(a);
        }
        var log = new StreamWriter(Path.Combine(Directory, m.Name + ".log"), append: true) { AutoFlush = true };
        var process = new Process { StartInfo = psi };
        var exit = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnLine(object? sender, DataReceivedEventArgs e)
        {
            if (e.Data is null)
            {
                return;
            }
            lock (m)
            {
                m.Tail.Enqueue(e.Data);
                while (m.Tail.Count > 20)
                {
                    m.Tail.Dequeue();
                }
                try
                {
                    log.WriteLine(e.Data);
                }
                catch (ObjectDisposedException)
                {
                }
            }
            _options.Log?.Invoke($"[etcd {m.Name}] {e.Data}");
        }
        process.OutputDataReceived += OnLine;
        process.ErrorDataReceived += OnLine;
        process.Exited += (_, _) =>
        {
            LiveMembers.TryRemove(KeyValuePair.Create(process.Id, process));
            exit.TrySetResult(ExitCodeOf(process));
        };
        process.EnableRaisingEvents = true;
        if (!process.Start())
        {
            throw new InvalidOperationException($"Could not start {Binary}.");
        }
        LiveMembers[process.Id] = process;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        m.Process = process;
        m.Exit = exit;
        m.LogFile?.Dispose();
        m.LogFile = log;
    }

    private void Signal(int index, int signal)
    {
        var m = _members[index];
        if (m.Process is not { HasExited: false } p)
        {
            throw new InvalidOperationException($"etcd member {m.Name} is not running.");
        }
        if (NativeMethods.kill(p.Id, signal) != 0)
        {
            throw new InvalidOperationException($"Could not signal etcd member {m.Name} (pid {p.Id}): errno {Marshal.GetLastPInvokeError()}.");
        }
    }

    private static async Task StopProcessAsync(Process p)
    {
        try
        {
            if (!p.HasExited)
            {
                p.Kill();
            }
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await p.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
        }
        finally
        {
            LiveMembers.TryRemove(KeyValuePair.Create(SafeId(p), p));
            p.Dispose();
        }
    }

    private static int SafeId(Process p)
    {
        try
        {
            return p.Id;
        }
        catch (InvalidOperationException)
        {
            return -1;
        }
    }

    private static int ExitCodeOf(Process p)
    {
        try
        {
            return p.ExitCode;
        }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException)
        {
            return -1;
        }
    }

    private static string Tail(Member m)
    {
        lock (m)
        {
            return string.Join("\n", m.Tail);
        }
    }

    private static int[] FreePorts(int count)
    {
        // Hold every listener until all ports are chosen so no port is handed out twice.
        var listeners = Enumerable.Range(0, count).Select(_ =>
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            return l;
        }).ToList();
        var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        foreach (var l in listeners)
        {
            l.Stop();
            l.Dispose();
        }
        return ports;
    }

    /// <summary>Kills every member and, unless kept, deletes the directory.</summary>
    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(Enumerable.Range(0, _members.Length).Select(KillAsync)).ConfigureAwait(false);
        foreach (var m in _members)
        {
            lock (m)
            {
                m.LogFile?.Dispose();
                m.LogFile = null;
            }
        }
        _http.Dispose();
        if (_ownsDirectory && !_options.KeepData)
        {
            try
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private sealed class Member(string name, string clientUrl, string peerUrl, string dataDir)
    {
        public string Name { get; } = name;

        public string ClientUrl { get; } = clientUrl;

        public string PeerUrl { get; } = peerUrl;

        public string DataDir { get; } = dataDir;

        public Process? Process { get; set; }

        public TaskCompletionSource<int> Exit { get; set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public StreamWriter? LogFile { get; set; }

        public Queue<string> Tail { get; } = new();
    }

    private static class NativeMethods
    {
#pragma warning disable SYSLIB1054, CA5392, CA1401 // a plain blittable signature; no marshalling needed
        [DllImport("libc", SetLastError = true)]
        public static extern int kill(int pid, int sig);
#pragma warning restore SYSLIB1054, CA5392, CA1401
    }
}
