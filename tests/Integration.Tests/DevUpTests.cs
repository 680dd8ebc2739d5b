using System.Diagnostics;
using System.Text.RegularExpressions;
using Scheduler.Cli.Cluster;
using Xunit;
using Xunit.Abstractions;

namespace Scheduler.Integration.Tests;

/// <summary><c>schedctl dev up --masters 3</c> and <c>schedctl leader</c>, as a user runs them.</summary>
public sealed partial class DevUpTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Dev_up_with_three_masters_runs_etcd_and_schedctl_leader_follows_a_failover()
    {
        var workDir = Path.Combine(Path.GetTempPath(), "sched-devup-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(workDir);
        var info = new ProcessStartInfo(Schedctl.Command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in (string[])[Schedctl.Dll, "dev", "up", "--masters", "3", "--agents", "1", "--port", "0", "--work-dir", workDir])
        {
            info.ArgumentList.Add(a);
        }
        info.Environment["DOTNET_NOLOGO"] = "1";
        info.Environment.Remove("SCHED_MASTER");
        using var devUp = Process.Start(info)!;
        var lines = new List<string>();
        var up = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnLine(string? line)
        {
            if (line is null)
            {
                up.TrySetException(new InvalidOperationException("dev up ended before the cluster was up:\n" + string.Join("\n", Snapshot(lines))));
                return;
            }
            lock (lines)
            {
                lines.Add(line);
            }
            if (ClusterUp().Match(line) is { Success: true } m)
            {
                up.TrySetResult(m.Groups[1].Value);
            }
        }
        devUp.OutputDataReceived += (_, e) => OnLine(e.Data);
        devUp.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (lines)
                {
                    lines.Add(e.Data);
                }
            }
        };
        devUp.BeginOutputReadLine();
        devUp.BeginErrorReadLine();
        try
        {
            var masters = (await up.Task.WaitAsync(TimeSpan.FromSeconds(90))).Split(',');
            Assert.Equal(3, masters.Length);
            // Three etcd members, three masters and an agent, as separate processes under the work dir.
            Assert.Equal(3, ProcessesUnder(workDir, "--initial-cluster-token").Count);
            Assert.Equal(3, ProcessesUnder(workDir, "master run").Count);
            var list = string.Join(",", masters);

            var leader = await LeaderAsync(list, masters, exclude: null);
            output.WriteLine($"masters {list}; leader {leader}");
            var index = Array.IndexOf(masters, leader);
            var pid = Assert.Single(ProcessesUnder(Path.Combine(workDir, $"master{index + 1}") + " ", "master run"));
            DaemonProcess.Signal(pid, 9);

            var next = await LeaderAsync(list, masters, exclude: leader);
            output.WriteLine($"after SIGKILL of {leader}: leader {next}");
            Assert.NotEqual(leader, next);
        }
        finally
        {
            if (!devUp.HasExited)
            {
                DaemonProcess.Signal(devUp.Id, 15); // Ctrl-C/SIGTERM: dev up stops everything it started
                using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                try
                {
                    await devUp.WaitForExitAsync(wait.Token);
                }
                catch (OperationCanceledException)
                {
                    devUp.Kill(entireProcessTree: true);
                }
            }
            var left = ProcessesUnder(workDir, "");
            await LocalCluster.KillLeftoversAsync(workDir);
            Directory.Delete(workDir, recursive: true);
            Assert.True(left.Count == 0, $"dev up left {left.Count} process(es) running after SIGTERM");
        }
    }

    /// <summary>Runs <c>schedctl leader --master LIST</c> until it names a leader other than
    /// <paramref name="exclude"/>.</summary>
    private async Task<string> LeaderAsync(string list, string[] masters, string? exclude)
    {
        CliResult? last = null;
        string? leader = null;
        await Poll.UntilAsync(async () =>
        {
            last = await Schedctl.RunAsync(TimeSpan.FromSeconds(30), "leader", "--master", list);
            if (last.ExitCode == 0 && LeaderLine().Match(last.Stdout) is { Success: true } m && m.Groups[1].Value != exclude)
            {
                leader = m.Groups[1].Value;
                return true;
            }
            return false;
        }, TimeSpan.FromSeconds(30), () =>
        {
            output.WriteLine(last?.ToString() ?? "");
            return "schedctl leader to name a (new) leader; last run: " + last;
        }, TimeSpan.FromMilliseconds(200));
        Assert.Contains(leader, masters);
        return leader!;
    }

    private static List<string> Snapshot(List<string> lines)
    {
        lock (lines)
        {
            return [.. lines];
        }
    }

    /// <summary>Pids of processes whose command line contains both strings.</summary>
    private static List<int> ProcessesUnder(string path, string what) => Directory.EnumerateDirectories("/proc")
        .Select(d => int.TryParse(Path.GetFileName(d), out var pid) ? pid : -1)
        .Where(pid =>
        {
            try
            {
                var cmd = File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ');
                return pid > 0 && pid != Environment.ProcessId && cmd.Contains(path, StringComparison.Ordinal) && cmd.Contains(what, StringComparison.Ordinal)
                    && !cmd.Contains(" dev up ", StringComparison.Ordinal);
            }
            catch (IOException)
            {
                return false;
            }
        })
        .ToList();

    [GeneratedRegex(@"cluster up: master\(s\) (\S+),")]
    private static partial Regex ClusterUp();

    [GeneratedRegex(@"^leader: (\S+) ", RegexOptions.Multiline)]
    private static partial Regex LeaderLine();
}
