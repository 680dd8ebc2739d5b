using System.Net;
using System.Net.Sockets;
using Scheduler.Agent;
using Scheduler.Master.Registry;
using Xunit;

namespace Scheduler.Cli.Tests;

/// <summary>A daemon that cannot start says why and what to do in one line, and exits non-zero,
/// instead of a host's stack traces.</summary>
public sealed class DaemonStartupTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("daemon-start-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var run = CliApp.RunAsync(args, output, error);
        var finished = await Task.WhenAny(run, Task.Delay(Timeout.Infinite, timeout.Token).ContinueWith(_ => { }, TaskScheduler.Default));
        Assert.True(finished == run, $"schedctl {string.Join(' ', args)} kept running instead of refusing to start");
        return (await run, output.ToString(), error.ToString());
    }

    private static void AssertOneLine(int code, string error, string expected)
    {
        Assert.Equal(1, code);
        var line = Assert.Single(error.Trim().Split('\n'));
        Assert.StartsWith("schedctl: ", line, StringComparison.Ordinal);
        Assert.Contains(expected, line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("master")]
    [InlineData("agent")]
    public async Task A_listen_address_in_use_is_one_line_naming_the_option(string daemon)
    {
        var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        try
        {
            var port = ((IPEndPoint)holder.LocalEndpoint).Port;
            string[] args = daemon == "master"
                ? ["master", "run", "--listen", $"127.0.0.1:{port}", "--work-dir", Path.Combine(_dir, "m")]
                : ["agent", "run", "--master", "127.0.0.1:1", "--listen", $"127.0.0.1:{port}", "--work-dir", Path.Combine(_dir, "a"), "--isolation", "none"];
            var (code, _, error) = await RunAsync(args);
            AssertOneLine(code, error, $"cannot listen on 127.0.0.1:{port}: the address is already in use");
            Assert.Contains("--listen", error, StringComparison.Ordinal);
        }
        finally
        {
            holder.Stop();
        }
    }

    [Theory]
    [InlineData("master")]
    [InlineData("agent")]
    public async Task A_work_dir_that_cannot_be_created_is_one_line(string daemon)
    {
        var file = Path.Combine(_dir, "a-file");
        await File.WriteAllTextAsync(file, "");
        var workDir = Path.Combine(file, "work");
        string[] args = daemon == "master"
            ? ["master", "run", "--listen", "127.0.0.1:0", "--work-dir", workDir]
            : ["agent", "run", "--master", "127.0.0.1:1", "--work-dir", workDir, "--isolation", "none"];
        var (code, _, error) = await RunAsync(args);
        AssertOneLine(code, error, $"cannot use the work dir {workDir}");
        Assert.Contains("--work-dir", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_master_work_dir_held_by_another_master_is_one_line()
    {
        var workDir = Path.Combine(_dir, "m");
        await using var held = FileRegistryStore.Open(workDir);
        var (code, _, error) = await RunAsync("master", "run", "--listen", "127.0.0.1:0", "--work-dir", workDir);
        AssertOneLine(code, error, "is in use by another master");
    }

    [Fact]
    public async Task An_agent_work_dir_held_by_another_agent_is_one_line_naming_its_pid()
    {
        var workDir = Path.Combine(_dir, "a");
        Directory.CreateDirectory(workDir);
        using var held = WorkDirLock.Acquire(workDir);
        var (code, _, error) = await RunAsync("agent", "run", "--master", "127.0.0.1:1", "--work-dir", workDir, "--isolation", "none");
        AssertOneLine(code, error, $"in use by another agent (pid {Environment.ProcessId}");
    }
}
