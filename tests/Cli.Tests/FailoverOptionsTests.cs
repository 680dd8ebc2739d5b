using Scheduler.Cli;
using Xunit;

namespace Scheduler.Cli.Tests;

/// <summary>The replicated-master options of <c>master run</c> and <c>dev up</c>: bad values are
/// one line on stderr naming the option, exit code 2, and nothing starts.</summary>
public sealed class FailoverOptionsTests
{
    [Theory]
    [InlineData("--lease-ttl", new[] { "master", "run", "--work-dir", "/nonexistent/m", "--etcd", "http://127.0.0.1:1", "--lease-ttl", "1" })]
    [InlineData("--lease-ttl", new[] { "master", "run", "--work-dir", "/nonexistent/m", "--etcd", "http://127.0.0.1:1", "--lease-ttl", "2.5" })]
    [InlineData("--lease-ttl", new[] { "master", "run", "--work-dir", "/nonexistent/m", "--etcd", "http://127.0.0.1:1", "--lease-ttl", "301" })]
    [InlineData("--lease-ttl", new[] { "master", "run", "--work-dir", "/nonexistent/m", "--lease-ttl", "3" })]
    [InlineData("--etcd-user", new[] { "master", "run", "--work-dir", "/nonexistent/m", "--etcd-user", "sched:secret" })]
    [InlineData("--etcd-user", new[] { "master", "run", "--work-dir", "/nonexistent/m", "--etcd", "http://127.0.0.1:1", "--etcd-user", ":secret" })]
    [InlineData("--port", new[] { "dev", "up", "--masters", "3", "--port", "-1" })]
    [InlineData("--max-agent-heartbeats", new[] { "master", "run", "--work-dir", "/nonexistent/m", "--max-agent-heartbeats", "-5" })]
    [InlineData("--masters", new[] { "dev", "up", "--masters", "0", "--port", "0" })]
    public async Task Bad_failover_options_are_one_line_naming_the_option_and_exit_code_2(string option, string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await CliApp.RunAsync(args, output, error);
        Assert.Equal(2, code);
        var line = Assert.Single(error.ToString().Trim().Split('\n'));
        Assert.StartsWith("schedctl: ", line, StringComparison.Ordinal);
        Assert.Contains(option, line, StringComparison.Ordinal);
    }
}
