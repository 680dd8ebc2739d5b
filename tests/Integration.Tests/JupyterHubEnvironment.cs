using Xunit;

namespace Scheduler.Integration.Tests;

/// <summary>
/// What the JupyterHub spawner's tests need on this machine (Debian packages <c>jupyterhub</c>,
/// <c>jupyter-notebook</c>, <c>python3-grpcio</c>, <c>python3-protobuf</c>, <c>protobuf-compiler</c>,
/// <c>protobuf-compiler-grpc</c>), and a copy of <c>integrations/jupyterhub</c> with its stubs
/// generated from <c>protos/</c> into a temp dir.
/// </summary>
public static class JupyterHubEnvironment
{
    public const string Python = "/usr/bin/python3";

    /// <summary>Debian's node modules: a Node.js from another source (nodesource) does not look
    /// there, and Debian's configurable-http-proxy needs them.</summary>
    public const string DebianNodePath = "/usr/share/nodejs";

    private static readonly Lazy<string?> PythonMissing = new(FindPythonMissing);
    private static readonly Lazy<(string? Missing, bool NeedsNodePath)> HubMissing = new(FindHubMissing);

    public static string PackageSource => Path.Combine(Schedctl.RepoRoot, "integrations", "jupyterhub");

    /// <summary>Why the spawner's Python unit tests cannot run here, or null.</summary>
    public static string? MissingForUnitTests => PythonMissing.Value;

    /// <summary>Why a hub cannot run here, or null.</summary>
    public static string? MissingForHub => PythonMissing.Value ?? HubMissing.Value.Missing;

    /// <summary>Whether configurable-http-proxy needs NODE_PATH=/usr/share/nodejs to start.</summary>
    public static bool ProxyNeedsNodePath => HubMissing.Value.NeedsNodePath;

    /// <summary>Copies the package (without generated or cached files) into <paramref name="dir"/>
    /// and generates its stubs there with <c>python3 -m sched_jupyterhub.stubs</c>.</summary>
    public static async Task CopyPackageAsync(string dir)
    {
        CopyTree(PackageSource, dir);
        var (code, output) = await RunAsync(Python, ["-c",
            "import sys; sys.path.insert(0, sys.argv[1]); from sched_jupyterhub import stubs; stubs.main(['--protos', sys.argv[2], '--out', sys.argv[3]])",
            dir, Path.Combine(Schedctl.RepoRoot, "protos"), Path.Combine(dir, "sched_jupyterhub", "proto")], TimeSpan.FromSeconds(120));
        if (code != 0)
        {
            throw new InvalidOperationException("generating the spawner's stubs failed: " + output);
        }
    }

    public static Task<(int Code, string Output)> RunAsync(string file, IEnumerable<string> args, TimeSpan timeout)
        => ChildProcess.RunAsync(file, args, timeout);

    private static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }
        foreach (var sub in Directory.GetDirectories(from))
        {
            var name = Path.GetFileName(sub);
            if (name is "proto" or "__pycache__" or "build" || name.EndsWith(".egg-info", StringComparison.Ordinal))
            {
                continue;
            }
            CopyTree(sub, Path.Combine(to, name));
        }
    }

    private static string? FindPythonMissing()
    {
        if (!File.Exists(Python))
        {
            return Python + " does not exist (install python3, python3-grpcio, python3-protobuf)";
        }
        var (code, output) = RunAsync(Python, ["-c", "import grpc, grpc.aio, google.protobuf"], TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
        if (code != 0)
        {
            return $"{Python} cannot import grpc (install python3-grpcio python3-protobuf): {LastLine(output)}";
        }
        foreach (var (tool, package) in new[] { ("protoc", "protobuf-compiler"), ("grpc_python_plugin", "protobuf-compiler-grpc") })
        {
            if (Which(tool) is null)
            {
                return $"{tool} is not installed (Debian package {package})";
            }
        }
        return null;
    }

    private static (string?, bool) FindHubMissing()
    {
        foreach (var (tool, package) in new[] { ("jupyterhub", "jupyterhub"), ("jupyterhub-singleuser", "jupyterhub"), ("configurable-http-proxy", "jupyterhub (node-configurable-http-proxy)") })
        {
            if (Which(tool) is null)
            {
                return ($"{tool} is not installed (Debian package {package})", false);
            }
        }
        var (code, output) = RunAsync(Python, ["-c", "import jupyterhub, notebook"], TimeSpan.FromSeconds(60)).GetAwaiter().GetResult();
        if (code != 0)
        {
            return ($"{Python} cannot import jupyterhub and notebook (install jupyterhub jupyter-notebook): {LastLine(output)}", false);
        }
        if (RunAsync("configurable-http-proxy", ["--version"], TimeSpan.FromSeconds(30)).GetAwaiter().GetResult().Code == 0)
        {
            return (null, false);
        }
        var (withPath, proxyOutput) = RunAsync("/usr/bin/env", ["NODE_PATH=" + DebianNodePath, "configurable-http-proxy", "--version"], TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
        return withPath == 0 ? (null, true) : ($"configurable-http-proxy does not start: {LastLine(proxyOutput)}", false);
    }

    private static string? Which(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, tool)).FirstOrDefault(File.Exists);

    private static string LastLine(string output) => output.Trim().Split('\n')[^1];
}

/// <summary>A fact skipped, with the reason, when a real JupyterHub cannot run here.</summary>
public sealed class JupyterHubFactAttribute : FactAttribute
{
    public JupyterHubFactAttribute()
    {
        if (JupyterHubEnvironment.MissingForHub is { } reason)
        {
            Skip = "JupyterHub unavailable: " + reason;
        }
    }
}

/// <summary>A fact skipped, with the reason, when the spawner's Python tests cannot run here.</summary>
public sealed class SpawnerUnitTestFactAttribute : FactAttribute
{
    public SpawnerUnitTestFactAttribute()
    {
        if (JupyterHubEnvironment.MissingForUnitTests is { } reason)
        {
            Skip = "Python grpcio unavailable: " + reason;
        }
    }
}
