using System.Diagnostics;

namespace Scheduler.Integration.Tests;

/// <summary>The built <c>schedctl.dll</c> next to the tests, run as <c>dotnet schedctl.dll …</c>.</summary>
public static class Schedctl
{
    public static string Dll { get; } = FindDll();

    /// <summary>The command that starts schedctl: <c>dotnet</c> and the dll.</summary>
    public static IReadOnlyList<string> Command => [DotnetPath(), Dll];

    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>Runs schedctl to completion; kills it after <paramref name="timeout"/>.</summary>
    public static async Task<CliResult> RunAsync(TimeSpan timeout, params string[] args)
    {
        var info = new ProcessStartInfo(DotnetPath())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Dll);
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        info.Environment["DOTNET_NOLOGO"] = "1";
        // What a test gives, and nothing from the environment it runs in.
        info.Environment.Remove("SCHED_MASTER");
        info.Environment.Remove("SCHED_TOKEN");
        info.Environment.Remove("SCHED_TLS_CA");
        return await RunProcessAsync(info, timeout);
    }

    /// <summary>Runs any program to completion with its output captured; after <paramref name="timeout"/>
    /// it is killed (with its children) and a <see cref="TimeoutException"/> carries what it printed.</summary>
    public static async Task<CliResult> RunProcessAsync(ProcessStartInfo info, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(info);
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.UseShellExecute = false;
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"{info.FileName} {string.Join(' ', info.ArgumentList)} did not finish within {timeout.TotalSeconds:0} s; output so far:\n{await stdout}\n{await stderr}");
        }
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }

    private static string DotnetPath() =>
        Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";

    private static string FindDll()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "schedctl.dll");
        return File.Exists(path) ? path : throw new InvalidOperationException("schedctl.dll is not in the test output directory " + AppContext.BaseDirectory);
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (Directory.Exists(Path.Combine(dir.FullName, "protos", "sched", "v1")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("Cannot find the repository root (protos/sched/v1) above " + AppContext.BaseDirectory);
    }
}

public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}
