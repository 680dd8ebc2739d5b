using Scheduler.Cli;
using Xunit;

namespace Scheduler.Cli.Tests;

public sealed class CliTests
{
    private static async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await CliApp.RunAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Theory]
    [InlineData("tasks", "--no-such-option")]
    [InlineData("no-such-command")]
    [InlineData("run")]
    [InlineData("master", "run")]
    [InlineData("weights", "set", "web=zero")]
    [InlineData("weights", "set", "=2")]
    [InlineData("quota", "set", "web", "--guarantee", "cpus=2")]
    [InlineData("--master", "nohost", "agents")]
    [InlineData("--master", "127.0.0.1:99999", "agents")]
    [InlineData("demo", "--tasks", "0")]
    [InlineData("kill", "t1", "--grace", "-1")]
    public async Task Bad_input_is_one_line_on_stderr_and_exit_code_2(params string[] args)
    {
        var (code, output, error) = await RunAsync(args);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        var line = Assert.Single(error.Trim().Split('\n'));
        Assert.StartsWith("schedctl: ", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("agnets", "unknown command 'agnets' for schedctl; did you mean 'agents'?")]
    [InlineData("no-such-command", "unknown command 'no-such-command' for schedctl; the commands are: acl, agent, agents,")]
    [InlineData("quota sett", "unknown command 'sett' for schedctl quota; did you mean 'set'?")]
    public async Task An_unknown_command_is_named_with_a_suggestion_and_the_commands_there_are(string args, string expected)
    {
        var (code, output, error) = await RunAsync(args.Split(' '));
        Assert.Equal(2, code);
        Assert.Equal("", output);
        var line = Assert.Single(error.Trim().Split('\n'));
        Assert.StartsWith("schedctl: " + expected, line, StringComparison.Ordinal);
        Assert.DoesNotContain("Required command", line, StringComparison.Ordinal);
    }

    /// <summary>Quantities beyond what a resource can hold used to surface as "unexpected error
    /// (ArgumentOutOfRangeException)"; they are usage errors naming the option and the limit.</summary>
    [Theory]
    [InlineData("run", "--mem", "1e99", "--", "true")]
    [InlineData("run", "--cpus", "1e300", "--", "true")]
    [InlineData("run", "--disk", "1e20", "--", "true")]
    [InlineData("agent", "run", "--master", "127.0.0.1:1", "--work-dir", "/nonexistent/agent", "--resources", "cpus:1;mem:1e99")]
    [InlineData("dev", "up", "--port", "0", "--resources", "cpus:1;mem:1e99")]
    [InlineData("reserve", "agent-1", "cpus(r1):1;mem(r1):1e99")]
    [InlineData("quota", "set", "r1", "--limit", "mem:1e99")]
    public async Task Quantities_out_of_range_are_usage_errors_naming_the_limit(params string[] args)
    {
        var (code, output, error) = await RunAsync(["--master", "127.0.0.1:1", .. args]);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        var line = Assert.Single(error.Trim().Split('\n'));
        Assert.Contains("larger than the largest quantity a resource can have", line, StringComparison.Ordinal);
        Assert.DoesNotContain("unexpected", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("agents")]
    [InlineData("tasks", "--all")]
    [InlineData("roles", "--json")]
    [InlineData("leader")]
    [InlineData("quota", "get")]
    [InlineData("kill", "some-task")]
    [InlineData("logs", "some-task")]
    public async Task An_unreachable_master_is_one_clear_line_and_exit_code_1(params string[] args)
    {
        var (code, _, error) = await RunAsync(["--master", "127.0.0.1:1", .. args]);
        Assert.Equal(1, code);
        Assert.Equal("schedctl: cannot reach the master at 127.0.0.1:1: is it running? (schedctl dev up)", error.Trim());
    }

    [Fact]
    public async Task Run_without_a_master_says_how_to_start_one()
    {
        var (code, _, error) = await RunAsync("--master", "127.0.0.1:1", "run", "--offer-wait", "5", "--", "true");
        Assert.Equal(1, code);
        Assert.Contains("cannot reach the master at 127.0.0.1:1", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_lists_every_command()
    {
        var (code, output, _) = await RunAsync("--help");
        Assert.Equal(0, code);
        foreach (var command in new[] { "demo", "dev", "master", "agent", "agents", "frameworks", "tasks", "roles", "leader", "quota", "weights", "run", "logs", "kill", "health", "drain", "reactivate", "describe", "events" })
        {
            Assert.Contains("  " + command, output, StringComparison.Ordinal);
        }
        Assert.DoesNotContain("supervise", output, StringComparison.Ordinal);
    }

    [Fact]
    public void The_master_address_comes_from_the_option_then_the_environment_then_the_default()
    {
        var root = CliApp.BuildRoot();
        Assert.Equal(["10.0.0.1:5050", "10.0.0.2:5050"], GlobalOptions.Masters(root.Parse(["--master", "10.0.0.1:5050, 10.0.0.2:5050", "agents"])));
        var saved = Environment.GetEnvironmentVariable("SCHED_MASTER");
        try
        {
            Environment.SetEnvironmentVariable("SCHED_MASTER", "10.0.0.3:6000");
            Assert.Equal(["10.0.0.3:6000"], GlobalOptions.Masters(root.Parse(["agents"])));
            Environment.SetEnvironmentVariable("SCHED_MASTER", null);
            Assert.Equal([GlobalOptions.DefaultMaster], GlobalOptions.Masters(root.Parse(["agents"])));
        }
        finally
        {
            Environment.SetEnvironmentVariable("SCHED_MASTER", saved);
        }
    }

    [Fact]
    public void Resource_text_parses_scalars_and_rejects_the_rest()
    {
        var parsed = ResourceText.ParseScalars("cpus:2; mem:1024.5", "--limit").ToList();
        Assert.Equal([("cpus", 2.0), ("mem", 1024.5)], parsed.Select(r => (r.Name, r.Scalar)));
        Assert.Empty(ResourceText.ParseScalars(null, "--limit"));
        var e = Assert.Throws<CliException>(() => ResourceText.ParseScalars("cpus:-1", "--limit").ToList());
        Assert.Equal(CliException.Usage, e.ExitCode);
    }
}
