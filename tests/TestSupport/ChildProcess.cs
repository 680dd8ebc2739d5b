using System.Diagnostics;

namespace Scheduler.Testing;

/// <summary>Runs a program to completion for a test: output captured, a time limit, the whole
/// process tree killed when it is exceeded.</summary>
public static class ChildProcess
{
    /// <summary>Runs <paramref name="file"/> with <paramref name="args"/>; returns its exit code and
    /// combined output, or -1 and what it printed when it did not finish within <paramref name="timeout"/>.</summary>
    public static async Task<(int Code, string Output)> RunAsync(string file, IEnumerable<string> args, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(args);
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await p.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync().ConfigureAwait(false);
            return (-1, $"timed out after {timeout}: " + await stdout.ConfigureAwait(false) + await stderr.ConfigureAwait(false));
        }
        return (p.ExitCode, await stdout.ConfigureAwait(false) + await stderr.ConfigureAwait(false));
    }
}
