using System.Collections.Concurrent;
using System.Diagnostics;

namespace Scheduler.Hosting.Tests;

/// <summary>
/// The real grpcio peer: Debian's <c>/usr/bin/python3</c> with python3-grpcio, stubs generated
/// once per test run with protoc + grpc_python_plugin into a temp dir.
/// </summary>
public static class PythonGrpc
{
    public const string Python = "/usr/bin/python3";

    private static readonly Lazy<string?> Missing = new(FindMissing);
    private static readonly Lazy<Task<string>> Stubs = new(GenerateStubsAsync);
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string?> MissingModules = new();

    /// <summary>Why the interop tests cannot run here, or null when they can.</summary>
    public static string? MissingReason => Missing.Value;

    /// <summary>Why <paramref name="module"/> cannot be imported by <see cref="Python"/>, or null when it can.</summary>
    public static string? MissingModuleReason(string module) => MissingReason ?? MissingModules.GetOrAdd(module, m =>
    {
        var (code, output) = RunAsync(Python, ["-c", "import " + m], TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
        return code == 0 ? null : $"{Python} cannot import {m}: {output.Trim().Split('\n')[^1]}";
    });

    public static string RepoRoot { get; } = FindRepoRoot();

    public static string ProtoRoot => Path.Combine(RepoRoot, "protos");

    public static string InteropDir => Path.Combine(RepoRoot, "tests", "Hosting.Tests", "interop");

    public static Task<string> StubDirAsync() => Stubs.Value;

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (Directory.Exists(Path.Combine(dir.FullName, "protos", "sched", "v1")) && Directory.Exists(Path.Combine(dir.FullName, "tests", "Hosting.Tests", "interop")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("Cannot find the repository root (protos/sched/v1) above " + AppContext.BaseDirectory);
    }

    private static string? FindMissing()
    {
        if (!File.Exists(Python))
        {
            return Python + " does not exist (install python3 with python3-grpcio)";
        }
        var (code, output) = RunAsync(Python, ["-c", "import grpc, google.protobuf"], TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
        if (code != 0)
        {
            return Python + " cannot import grpc (install python3-grpcio python3-protobuf): " + output;
        }
        foreach (var tool in new[] { "protoc", "grpc_python_plugin" })
        {
            var (c, _) = RunAsync("/bin/sh", ["-c", "command -v " + tool], TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
            if (c != 0)
            {
                return tool + " is not installed (protobuf-compiler, protobuf-compiler-grpc)";
            }
        }
        return null;
    }

    private static async Task<string> GenerateStubsAsync()
    {
        var dir = Path.Combine(Path.GetTempPath(), "hosting-interop-stubs-" + Environment.ProcessId);
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }
        Directory.CreateDirectory(dir);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        };
        var (code, output) = await RunAsync(Python, ["-c", "import sys; sys.path.insert(0, sys.argv[1]); import stubs; stubs.generate(sys.argv[2], sys.argv[3])", InteropDir, dir, ProtoRoot], TimeSpan.FromSeconds(60));
        if (code != 0)
        {
            throw new InvalidOperationException("Generating Python stubs failed: " + output);
        }
        return dir;
    }

    /// <summary>Runs a process to completion; returns its exit code and combined output.</summary>
    public static Task<(int Code, string Output)> RunAsync(string file, IEnumerable<string> args, TimeSpan timeout)
        => ChildProcess.RunAsync(file, args, timeout);
}

/// <summary>A fact that is skipped, with the reason, when the Python grpcio peer is missing, or
/// one of the given Python modules (beyond grpc and protobuf) cannot be imported.</summary>
public sealed class PythonGrpcFactAttribute : FactAttribute
{
    public PythonGrpcFactAttribute(params string[] modules)
    {
        if (PythonGrpc.MissingReason is { } reason)
        {
            Skip = "Python grpcio interop unavailable: " + reason;
            return;
        }
        foreach (var module in modules)
        {
            if (PythonGrpc.MissingModuleReason(module) is { } missing)
            {
                Skip = "Python grpcio peer lacks a module: " + missing;
                return;
            }
        }
    }
}

/// <summary>The grpcio test server (interop/py_server.py) running as a child process.</summary>
public sealed class PythonServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _cancelled = new();
    private readonly TaskCompletionSource<int> _port = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly System.Text.StringBuilder _stderr = new();

    private PythonServer(Process process)
    {
        _process = process;
    }

    public int Port { get; private set; }

    public static async Task<PythonServer> StartAsync()
    {
        var stubs = await PythonGrpc.StubDirAsync();
        var psi = new ProcessStartInfo(PythonGrpc.Python)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(PythonGrpc.InteropDir, "py_server.py"));
        psi.ArgumentList.Add(stubs);
        psi.ArgumentList.Add(PythonGrpc.ProtoRoot);
        var server = new PythonServer(Process.Start(psi)!);
        server._process.OutputDataReceived += (_, e) => server.OnLine(e.Data);
        server._process.ErrorDataReceived += (_, e) =>
        {
            lock (server._stderr)
            {
                server._stderr.AppendLine(e.Data);
            }
        };
        server._process.EnableRaisingEvents = true;
        server._process.Exited += (_, _) => server._port.TrySetException(new InvalidOperationException("py_server.py exited: " + server.Stderr));
        server._process.BeginOutputReadLine();
        server._process.BeginErrorReadLine();
        try
        {
            server.Port = await server._port.Task.WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
        return server;
    }

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>Completes when the server reports a cancelled follow-stream with this id.</summary>
    public Task CancelledAsync(string id) => _cancelled.GetOrAdd(id, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }
        if (line.StartsWith("port ", StringComparison.Ordinal))
        {
            _port.TrySetResult(int.Parse(line[5..]));
        }
        else if (line.StartsWith("cancelled ", StringComparison.Ordinal))
        {
            _cancelled.GetOrAdd(line[10..], _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            _process.StandardInput.Close();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (Exception)
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        _process.Dispose();
    }
}
