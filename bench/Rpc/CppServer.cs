using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace Scheduler.Bench.Rpc;

/// <summary>Builds (once, cached by source hash) the reference C++ gRPC server in cpp/.</summary>
internal static class CppServer
{
    /// <summary>The built binary, or null with the reason it could not be built.</summary>
    public static async Task<(string? Path, string? Error)> BuildAsync(string repoRoot)
    {
        var cppDir = Path.Combine(repoRoot, "bench", "Rpc", "cpp");
        var protoRoot = Path.Combine(repoRoot, "protos");
        var hash = new StringBuilder();
        var files = Directory.GetFiles(cppDir).Concat(Directory.GetFiles(Path.Combine(protoRoot, "sched", "v1"), "*.proto")).Order(StringComparer.Ordinal);
        foreach (var f in files)
        {
            hash.Append(Convert.ToHexString(SHA256.HashData(await File.ReadAllBytesAsync(f))));
        }
        var key = Convert.ToHexString(SHA256.HashData(Encoding.ASCII.GetBytes(hash.ToString())))[..16];
        var outDir = Path.Combine(repoRoot, "bench", "Rpc", "obj", "cpp-" + key);
        var binary = Path.Combine(outDir, "echo_server");
        if (File.Exists(binary))
        {
            return (binary, null);
        }
        var psi = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(cppDir, "build.sh"));
        psi.ArgumentList.Add(protoRoot);
        psi.ArgumentList.Add(outDir);
        Console.Error.WriteLine("building the reference C++ gRPC server (first run only; a few minutes)…");
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0 || !File.Exists(binary))
        {
            return (null, $"cpp/build.sh exited {p.ExitCode}: {(await stderr).Trim()} {(await stdout).Trim()}");
        }
        return (binary, null);
    }
}
