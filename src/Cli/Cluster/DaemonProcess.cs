using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Scheduler.Cli.Cluster;

/// <summary>
/// A master or agent started as a child process by re-invoking this <c>schedctl</c>
/// (<see cref="Environment.ProcessPath"/>, plus the entry assembly when running under
/// <c>dotnet</c>). Captures its output lines (to a log file and/or a callback) and recognises the
/// <c>… listening on HOST:PORT</c> and <c>agent registered as ID</c> lines.
/// </summary>
public sealed partial class DaemonProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly TaskCompletionSource<string> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<string> _registered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<int> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly StreamWriter? _log;
    private readonly Action<string, string>? _onLine;
    private readonly Lock _lock = new();
    private readonly Queue<string> _tail = new();

    private DaemonProcess(string name, Process process, StreamWriter? log, Action<string, string>? onLine)
    {
        Name = name;
        _process = process;
        _log = log;
        _onLine = onLine;
    }

    public string Name { get; }

    public int Pid => _process.Id;

    /// <summary>Pid and start time, read just after the start (null if it was already gone).</summary>
    public ProcessIdentity? Identity { get; private set; }

    /// <summary>The <c>HOST:PORT</c> of the <c>… listening on</c> line.</summary>
    public Task<string> Listening => _listening.Task;

    /// <summary>The agent id of the <c>agent registered as</c> line.</summary>
    public Task<string> Registered => _registered.Task;

    /// <summary>Completes with the exit code.</summary>
    public Task<int> Exited => _exited.Task;

    /// <summary>The last lines of output (for error messages).</summary>
    public string RecentOutput
    {
        get
        {
            lock (_lock)
            {
                return string.Join(Environment.NewLine, _tail);
            }
        }
    }

    /// <summary>The program and leading arguments that run this schedctl again.</summary>
    public static IReadOnlyList<string> SelfCommand()
    {
        var path = Environment.ProcessPath ?? throw new CliException("cannot tell which executable runs schedctl");
        var exe = Path.GetFileNameWithoutExtension(path);
        if (exe.Equals("dotnet", StringComparison.OrdinalIgnoreCase))
        {
            // Under `dotnet schedctl.dll` the first command-line argument is the entry assembly's path
            // (Assembly.Location is empty in single-file builds, so it is not used).
            var entry = Environment.GetCommandLineArgs().FirstOrDefault();
            if (string.IsNullOrEmpty(entry))
            {
                throw new CliException("cannot tell which assembly runs schedctl under dotnet");
            }
            return [path, entry];
        }
        return [path];
    }

    /// <summary>Starts <c>schedctl ARGS…</c> (or <paramref name="command"/> + args).</summary>
    public static DaemonProcess Start(string name, IEnumerable<string> args, string? logFile = null, Action<string, string>? onLine = null, IReadOnlyList<string>? command = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        command ??= SelfCommand();
        var info = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in command.Skip(1).Concat(args))
        {
            info.ArgumentList.Add(a);
        }
        info.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }
        StreamWriter? log = null;
        if (logFile is not null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(logFile)!);
            log = new StreamWriter(new FileStream(logFile, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        }
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var daemon = new DaemonProcess(name, process, log, onLine);
        process.OutputDataReceived += (_, e) => daemon.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => daemon.OnLine(e.Data);
        process.Exited += (_, _) => daemon.OnExited();
        if (!process.Start())
        {
            throw new CliException($"could not start {name}");
        }
        daemon.Identity = OperatingSystem.IsLinux() ? ProcessTree.Identify(process.Id) : null;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return daemon;
    }

    /// <summary>Waits for <paramref name="what"/>; fails with the process's recent output if it
    /// exits first or the time runs out.</summary>
    public async Task<string> WaitForAsync(Task<string> what, string description, TimeSpan timeout, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(what);
        var first = await Task.WhenAny(what, Exited, Task.Delay(timeout, ct));
        if (first == what)
        {
            return await what;
        }
        ct.ThrowIfCancellationRequested();
        var output = RecentOutput;
        var why = first == Exited ? $"exited with code {Exited.Result}" : $"did not report {description} within {timeout.TotalSeconds:0} s";
        throw new CliException($"{Name} {why}{(output.Length > 0 ? ":" + Environment.NewLine + output : "")}");
    }

    /// <summary>SIGTERM, then SIGKILL (whole tree) after <paramref name="grace"/>.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (_process.HasExited)
        {
            return;
        }
        Signal(_process.Id, 15);
        if (await Task.WhenAny(Exited, Task.Delay(grace)) != Exited)
        {
            Kill();
            await Task.WhenAny(Exited, Task.Delay(TimeSpan.FromSeconds(5)));
        }
    }

    /// <summary>SIGKILL now (the process only, like a crash).</summary>
    public void Kill()
    {
        try
        {
            _process.Kill(entireProcessTree: false);
        }
        catch (InvalidOperationException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(5));
        _process.Dispose();
        if (_log is not null)
        {
            lock (_lock)
            {
                _log.Dispose();
            }
        }
    }

    /// <summary>Sends a Unix signal.</summary>
    public static void Signal(int pid, int signal)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        _ = NativeKill(pid, signal);
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int NativeKill(int pid, int signal);

    [GeneratedRegex(@"listening on (?<addr>\S+:\d+)")]
    private static partial Regex ListeningLine();

    [GeneratedRegex(@"agent registered as (?<id>\S+)")]
    private static partial Regex RegisteredLine();

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_lock)
        {
            _log?.WriteLine(line);
            _tail.Enqueue(line);
            while (_tail.Count > 20)
            {
                _tail.Dequeue();
            }
        }
        if (!_listening.Task.IsCompleted && ListeningLine().Match(line) is { Success: true } m)
        {
            _listening.TrySetResult(m.Groups["addr"].Value);
        }
        if (!_registered.Task.IsCompleted && RegisteredLine().Match(line) is { Success: true } r)
        {
            _registered.TrySetResult(r.Groups["id"].Value);
        }
        _onLine?.Invoke(Name, line);
    }

    private void OnExited()
    {
        // Not WaitForExit(): it also waits for the output pipes to close, which children that
        // inherited them (task supervisors outlive a killed agent by design) keep open.
        int code;
        try
        {
            code = _process.ExitCode;
        }
        catch (InvalidOperationException)
        {
            code = -1;
        }
        _exited.TrySetResult(code);
    }
}
