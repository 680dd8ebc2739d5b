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
        var (devUp, up, printed) = StartDevUp(workDir, "--masters", "3", "--agents", "1");
        using var _ = devUp;
        try
        {
            var masters = (await up.Task.WaitAsync(TimeSpan.FromSeconds(90))).Split(',');
            Assert.Equal(3, masters.Length);
            // Three etcd members, three masters and an agent, as separate processes under the work dir.
            Assert.Equal(3, ProcessesUnder(workDir, "--initial-cluster-token").Count);
            Assert.Equal(3, ProcessesUnder(workDir, "master run").Count);
            var list = string.Join(",", masters);

            var leader = await LeaderAsync(list, masters, exclude: null, Path.Combine(workDir, "tls", "ca.pem"));
            output.WriteLine($"masters {list}; leader {leader}");
            var index = Array.IndexOf(masters, leader);
            var pid = Assert.Single(ProcessesUnder(Path.Combine(workDir, $"master{index + 1}") + " ", "master run"));
            DaemonProcess.Signal(pid, 9);

            var next = await LeaderAsync(list, masters, exclude: leader, Path.Combine(workDir, "tls", "ca.pem"));
            output.WriteLine($"after SIGKILL of {leader}: leader {next}");
            Assert.NotEqual(leader, next);

            // dev up noticed, and said which daemon died, how, and where its log is.
            var notice = await printed($"master{index + 1} (pid {pid}) exited with code 137").WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Contains(Path.Combine(workDir, $"master{index + 1}.log"), notice, StringComparison.Ordinal);
            Assert.False(devUp.HasExited, "dev up stopped although two masters were left");

            // An etcd member (run by the local etcd cluster runner, under DIR/etcd) that dies is reported too.
            var member = Assert.Single(ProcessesUnder(Path.Combine(workDir, "etcd", "m2") + " ", "--initial-cluster-token"));
            DaemonProcess.Signal(member, 9);
            var etcdNotice = await printed($"etcd m2 (pid {member}) exited with code 137").WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Contains(Path.Combine(workDir, "etcd", "m2.log"), etcdNotice, StringComparison.Ordinal);
            Assert.False(devUp.HasExited, "dev up stopped although two etcd members and two masters were left");
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
            foreach (var pid in left)
            {
                DaemonProcess.Signal(pid, 9); // found by command line: the test's own check, never the product's clean-up
            }
            Directory.Delete(workDir, recursive: true);
            Assert.True(left.Count == 0, $"dev up left {left.Count} process(es) running after SIGTERM");
        }
    }

    /// <summary>
    /// The clean-up of <c>dev up</c> stops what it started, found by pid, parentage, checkpoint
    /// and cgroup, and nothing else: a user's <c>tail -f DIR/master.log</c> and a process under a
    /// sibling <c>DIR0</c> survive it (both name the work dir in their command line), while the
    /// task's supervisor (a pooled one, whose command line does not name the work dir) and the
    /// task do not.
    /// </summary>
    [Fact]
    public async Task Stopping_dev_up_ends_the_supervisors_and_tasks_it_started_and_no_other_process()
    {
        var workDir = Path.Combine(Path.GetTempPath(), "sched-devup-" + Guid.NewGuid().ToString("N")[..10]);
        var sibling = workDir + "0";
        var scratch = Path.Combine(Path.GetTempPath(), "sched-devup-pid-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(workDir);
        Directory.CreateDirectory(sibling);
        Directory.CreateDirectory(scratch);
        File.WriteAllText(Path.Combine(sibling, "notes.log"), "");
        var (devUp, up, _) = StartDevUp(workDir, "--agents", "1");
        Process? userTail = null;
        Process? siblingTail = null;
        Process? run = null;
        ProcessIdentity? task = null;
        ProcessIdentity? supervisor = null;
        try
        {
            var master = await up.Task.WaitAsync(TimeSpan.FromSeconds(90));
            userTail = StartQuiet("tail", "-f", Path.Combine(workDir, "master.log"));
            siblingTail = StartQuiet("tail", "-f", Path.Combine(sibling, "notes.log"));
            // The first launch starts its own supervisor and fills the agent's pool; the second
            // task's supervisor comes from the pool.
            var first = await Schedctl.RunAsync(TimeSpan.FromSeconds(60), "run", "--master", master, "--token-file", Path.Combine(workDir, "admin.token"), "--tls-ca", Path.Combine(workDir, "tls", "ca.pem"), "--", "true");
            Assert.True(first.ExitCode == 0, first.ToString());
            var pidFile = Path.Combine(scratch, "task.pid");
            run = StartQuiet(Schedctl.Command[0], Schedctl.Dll, "run", "--master", master, "--token-file", Path.Combine(workDir, "admin.token"), "--tls-ca", Path.Combine(workDir, "tls", "ca.pem"), "--", $"echo $$ > {pidFile}.tmp && mv {pidFile}.tmp {pidFile} && exec sleep 600");
            await Poll.UntilAsync(() => File.Exists(pidFile), TimeSpan.FromSeconds(60), "the task to write its pid");
            var taskPid = int.Parse(File.ReadAllText(pidFile).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            task = ProcessTree.Identify(taskPid);
            supervisor = ProcessTree.Identify(ParentOf(taskPid));
            Assert.NotNull(task);
            Assert.NotNull(supervisor);
            output.WriteLine($"task pid {taskPid}, supervisor pid {supervisor.Value.Pid}");

            DaemonProcess.Signal(devUp.Id, 15);
            using (var wait = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
            {
                await devUp.WaitForExitAsync(wait.Token);
            }
            // The two end with dev up; allow a moment for whoever inherits them to reap them.
            var ended = await Poll.HoldsWithinAsync(() => !ProcessTree.IsSame(task.Value) && !ProcessTree.IsSame(supervisor.Value), TimeSpan.FromSeconds(5));
            var problems = new List<string>();
            if (!ended)
            {
                problems.Add($"the task (alive: {ProcessTree.IsSame(task.Value)}) or its pooled supervisor (alive: {ProcessTree.IsSame(supervisor.Value)}) outlived dev up");
            }
            if (userTail.HasExited)
            {
                problems.Add("a user's `tail -f WORKDIR/master.log` was killed by dev up's clean-up");
            }
            if (siblingTail.HasExited)
            {
                problems.Add("a process under the sibling directory WORKDIR0 was killed by dev up's clean-up");
            }
            Assert.True(problems.Count == 0, string.Join("; ", problems));
        }
        finally
        {
            foreach (var p in new[] { devUp, userTail, siblingTail, run })
            {
                if (p is not null)
                {
                    if (!p.HasExited)
                    {
                        p.Kill(entireProcessTree: true);
                        await p.WaitForExitAsync();
                    }
                    p.Dispose();
                }
            }
            foreach (var leftover in new[] { task, supervisor })
            {
                if (leftover is { } l)
                {
                    ProcessTree.Signal([l], ProcessTree.SIGKILL);
                }
            }
            foreach (var dir in new[] { workDir, sibling, scratch })
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    /// <summary>Starts <c>schedctl dev up --port 0 --work-dir DIR ARGS…</c>; the task completes with
    /// the master list of its <c>cluster up</c> line.</summary>
    /// <summary>Starts dev up; returns the process, its "cluster up" line's master list, and a
    /// function that awaits the first line (stdout or stderr) containing a text.</summary>
    private static (Process DevUp, TaskCompletionSource<string> Up, Func<string, Task<string>> Printed) StartDevUp(string workDir, params string[] args)
    {
        var info = new ProcessStartInfo(Schedctl.Command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in (string[])[Schedctl.Dll, "dev", "up", "--port", "0", "--work-dir", workDir, .. args])
        {
            info.ArgumentList.Add(a);
        }
        info.Environment["DOTNET_NOLOGO"] = "1";
        info.Environment.Remove("SCHED_MASTER");
        var devUp = Process.Start(info)!;
        var lines = new List<string>();
        var waiters = new List<(string Text, TaskCompletionSource<string> Seen)>();
        var up = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        void Record(string line)
        {
            lock (lines)
            {
                lines.Add(line);
                foreach (var (text, seen) in waiters.Where(w => line.Contains(w.Text, StringComparison.Ordinal)))
                {
                    seen.TrySetResult(line);
                }
            }
        }
        Task<string> Printed(string text)
        {
            var seen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (lines)
            {
                if (lines.FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal)) is { } line)
                {
                    return Task.FromResult(line);
                }
                waiters.Add((text, seen));
            }
            return seen.Task;
        }
        void OnLine(string? line)
        {
            if (line is null)
            {
                up.TrySetException(new InvalidOperationException("dev up ended before the cluster was up:\n" + string.Join("\n", Snapshot(lines))));
                return;
            }
            Record(line);
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
                Record(e.Data);
            }
        };
        devUp.BeginOutputReadLine();
        devUp.BeginErrorReadLine();
        return (devUp, up, Printed);
    }

    /// <summary>Starts a program with its output discarded.</summary>
    private static Process StartQuiet(string program, params string[] args)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        info.Environment.Remove("SCHED_MASTER");
        var p = Process.Start(info)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    private static int ParentOf(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Runs <c>schedctl leader --master LIST</c> until it names a leader other than
    /// <paramref name="exclude"/>.</summary>
    private async Task<string> LeaderAsync(string list, string[] masters, string? exclude, string ca)
    {
        CliResult? last = null;
        string? leader = null;
        await Poll.UntilAsync(async () =>
        {
            last = await Schedctl.RunAsync(TimeSpan.FromSeconds(30), "leader", "--master", list, "--tls-ca", ca);
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
