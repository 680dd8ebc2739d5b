using System.Diagnostics;
using System.Text.Json;
using Sched.V1;
using Xunit;

namespace Scheduler.Integration.Tests;

/// <summary>
/// The operator commands that docs/operations.md promises — health, drain and reactivate,
/// describe, events — and --json on run and logs, against a real master and agents.
/// </summary>
public sealed class OperatorCommandsTests(SharedCluster cluster) : IClassFixture<SharedCluster>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    private Task<CliResult> Cli(params string[] args) => Schedctl.RunAsync(Timeout, ["--master", cluster.MasterAddress, .. args]);

    [Fact]
    public async Task Health_reports_each_master_and_fails_for_one_that_does_not_answer()
    {
        var ok = await Cli("health");
        Assert.True(ok.ExitCode == 0, ok.Stderr);
        Assert.Contains(cluster.MasterAddress, ok.Stdout, StringComparison.Ordinal);
        Assert.Contains("standalone", ok.Stdout, StringComparison.Ordinal);

        var json = await Cli("health", "--json");
        using (var doc = JsonDocument.Parse(json.Stdout))
        {
            var entry = Assert.Single(doc.RootElement.EnumerateArray());
            Assert.Equal(cluster.MasterAddress, entry.GetProperty("address").GetString());
            Assert.True(entry.GetProperty("health").GetProperty("healthy").GetBoolean());
        }

        // One of two configured masters does not answer: reported as such, exit 1.
        var dead = await Schedctl.RunAsync(Timeout, "--master", $"{cluster.MasterAddress},127.0.0.1:1", "health");
        Assert.Equal(1, dead.ExitCode);
        Assert.Contains("127.0.0.1:1", dead.Stdout, StringComparison.Ordinal);
        Assert.Contains("no answer", dead.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Drain_stops_offers_to_an_agent_and_reactivate_ends_it()
    {
        var agent = cluster.Agents[0].AgentId;
        var drain = await Cli("drain", agent);
        try
        {
            Assert.True(drain.ExitCode == 0, drain.Stderr);
            Assert.Contains("draining", drain.Stdout, StringComparison.Ordinal);
            // Draining while tasks run, drained once none do.
            Assert.Contains(await AgentStatusAsync(agent), new[] { AgentStatus.AgentDraining, AgentStatus.AgentDrained });

            // Every task launched now lands on the other agent.
            var run = await Cli("run", "--name", "drained", "--", "true");
            Assert.True(run.ExitCode == 0, run.Stderr);
            Assert.DoesNotContain($"on agent {agent} ", run.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            var reactivate = await Cli("reactivate", agent);
            Assert.True(reactivate.ExitCode == 0, reactivate.Stderr);
        }
        Assert.Equal(AgentStatus.AgentActive, await AgentStatusAsync(agent));

        var unknown = await Cli("drain", "no-such-agent");
        Assert.NotEqual(0, unknown.ExitCode);
        Assert.Contains("no-such-agent", unknown.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_and_logs_print_json_for_scripts()
    {
        var run = await Cli("run", "--json", "--name", "jsonrun", "--", "echo hello-json; exit 3");
        Assert.Equal(3, run.ExitCode);
        using var result = JsonDocument.Parse(run.Stdout);
        var root = result.RootElement;
        var taskId = root.GetProperty("task_id").GetString()!;
        Assert.StartsWith("jsonrun-", taskId, StringComparison.Ordinal);
        Assert.Equal(3, root.GetProperty("exit_code").GetInt32());
        Assert.Equal("TASK_FAILED", root.GetProperty("status").GetProperty("state").GetString());
        Assert.Equal("hello-json\n", root.GetProperty("stdout").GetString());

        var logs = await Cli("logs", taskId, "--json");
        Assert.True(logs.ExitCode == 0, logs.Stderr);
        var chunks = logs.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l)).ToList();
        Assert.NotEmpty(chunks);
        Assert.All(chunks, c => Assert.Equal(taskId, c.RootElement.GetProperty("task_id").GetString()));
        Assert.Equal("hello-json\n", string.Concat(chunks.Select(c => c.RootElement.GetProperty("data").GetString())));
        Assert.Equal(0, chunks[0].RootElement.GetProperty("offset").GetInt64());
    }

    [Fact]
    public async Task Describe_shows_a_task_its_agent_and_its_framework()
    {
        var run = await Cli("run", "--json", "--name", "described", "--", "echo described");
        Assert.True(run.ExitCode == 0, run.Stderr);
        using var result = JsonDocument.Parse(run.Stdout);
        var taskId = result.RootElement.GetProperty("task_id").GetString()!;
        var agentId = result.RootElement.GetProperty("agent_id").GetString()!;
        var frameworkId = result.RootElement.GetProperty("framework_id").GetString()!;

        var task = await Cli("describe", "task", taskId);
        Assert.True(task.ExitCode == 0, task.Stderr);
        Assert.Contains($"task:", task.Stdout, StringComparison.Ordinal);
        Assert.Contains(taskId, task.Stdout, StringComparison.Ordinal);
        Assert.Contains("finished", task.Stdout, StringComparison.Ordinal);
        Assert.Contains("echo described", task.Stdout, StringComparison.Ordinal);

        var agent = await Cli("describe", "agent", agentId);
        Assert.True(agent.ExitCode == 0, agent.Stderr);
        Assert.Contains("last heartbeat:", agent.Stdout, StringComparison.Ordinal);

        var framework = await Cli("describe", "framework", frameworkId, "--json");
        Assert.True(framework.ExitCode == 0, framework.Stderr);
        var state = Google.Protobuf.JsonParser.Default.Parse<GetStateResponse>(framework.Stdout);
        Assert.Equal("schedctl-run", Assert.Single(state.Frameworks).Info.Name);

        var missing = await Cli("describe", "task", "no-such-task");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("schedctl tasks --all", missing.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Events_follow_the_cluster_live()
    {
        var info = new ProcessStartInfo(Schedctl.Command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])[Schedctl.Dll, "--master", cluster.MasterAddress, "events"])
        {
            info.ArgumentList.Add(a);
        }
        using var events = Process.Start(info)!;
        var subscribed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var finished = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        events.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not { } line)
            {
                return;
            }
            if (line.Contains("subscribed to", StringComparison.Ordinal))
            {
                subscribed.TrySetResult();
            }
            if (line.Contains("task updated", StringComparison.Ordinal) && line.Contains("evented-", StringComparison.Ordinal) && line.Contains("finished", StringComparison.Ordinal))
            {
                finished.TrySetResult();
            }
        };
        events.BeginOutputReadLine();
        try
        {
            await subscribed.Task.WaitAsync(TimeSpan.FromSeconds(60));
            var run = await Cli("run", "--name", "evented", "--", "true");
            Assert.True(run.ExitCode == 0, run.Stderr);
            await finished.Task.WaitAsync(TimeSpan.FromSeconds(60));
        }
        finally
        {
            events.Kill(entireProcessTree: true);
            await events.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task A_task_no_agent_fits_says_what_it_waits_for()
    {
        var run = await Cli("run", "--cpus", "1000", "--offer-wait", "8", "--", "true");
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("waiting for an offer that fits", run.Stderr, StringComparison.Ordinal);
        Assert.Contains("no offer could fit the task", run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_master_address_that_is_an_agent_is_named_as_such()
    {
        var agent = cluster.Agents[0].Address;
        var result = await Schedctl.RunAsync(Timeout, "--master", agent, "agents");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("is not a master", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("older version", result.Stderr, StringComparison.Ordinal);
    }

    /// <summary>docs/frameworks.md's flow: a framework runs tasks and tears itself down; 'tasks --all'
    /// still lists them (the one still running as killed) and 'logs' still prints their output.</summary>
    [Fact]
    public async Task A_torn_down_frameworks_tasks_stay_listed_with_their_logs()
    {
        var name = "gone" + Guid.NewGuid().ToString("N")[..6];
        string frameworkId;
        await using (var fw = new TestFramework(cluster.MasterAddress, name))
        {
            frameworkId = await fw.SubscribedAsync();
            await fw.LaunchAsync(new Scheduler.FrameworkSdk.TaskBuilder(name + "-done").Shell("echo output-of-" + name).Cpus(0.1).Mem(16));
            await fw.WaitForStateAsync(name + "-done", TaskState.TaskFinished, TimeSpan.FromSeconds(60));
            await fw.LaunchAsync(new Scheduler.FrameworkSdk.TaskBuilder(name + "-live").Shell("sleep 600").Cpus(0.1).Mem(16));
            await fw.WaitForStateAsync(name + "-live", TaskState.TaskRunning, TimeSpan.FromSeconds(60));
        } // disposal tears the framework down

        var tasks = await Cli("tasks", "--all", "--json");
        Assert.True(tasks.ExitCode == 0, tasks.Stderr);
        var listed = Google.Protobuf.JsonParser.Default.Parse<GetTasksResponse>(tasks.Stdout).Tasks.Where(t => t.FrameworkId == frameworkId).ToList();
        Assert.Equal(TaskState.TaskFinished, listed.Single(t => t.TaskId == name + "-done").State);
        Assert.Equal(TaskState.TaskKilled, listed.Single(t => t.TaskId == name + "-live").State);

        var logs = await Cli("logs", name + "-done");
        Assert.True(logs.ExitCode == 0, logs.Stderr);
        Assert.Equal("output-of-" + name, logs.Stdout.Trim());
    }

    private async Task<AgentStatus> AgentStatusAsync(string agentId)
    {
        var agents = await Cli("agents", "--json");
        Assert.True(agents.ExitCode == 0, agents.Stderr);
        return Google.Protobuf.JsonParser.Default.Parse<GetAgentsResponse>(agents.Stdout).Agents.Single(a => a.Info.Id == agentId).Status;
    }
}
