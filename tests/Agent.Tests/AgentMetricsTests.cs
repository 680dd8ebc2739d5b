using Sched.V1;
using Xunit;
using Scheduler.Agent.Telemetry;
using Scheduler.Hosting;

namespace Scheduler.Agent.Tests;

public sealed class AgentMetricsTests
{
    [Fact]
    public async Task Launches_ends_and_start_latency_are_exposed_for_prometheus()
    {
        await using var h = new AgentHarness(isolation: "none");
        using var metrics = new AgentMetrics(h.Core);
        h.Core.Metrics = metrics;
        await using var endpoint = await MetricsEndpoint.StartAsync("127.0.0.1:0", [metrics.Meter]);
        h.Launch(AgentHarness.ShellTask("m-ok", "true"), AgentHarness.ShellTask("m-bad", "exit 4"));
        Assert.Equal(TaskState.TaskFinished, (await h.WaitTerminalAsync("m-ok")).State);
        Assert.Equal(TaskState.TaskFailed, (await h.WaitTerminalAsync("m-bad")).State);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        // Without the otel_scope_name label the exporter puts on every series, as docs/metrics.md lists them.
        var text = System.Text.RegularExpressions.Regex.Replace(await http.GetStringAsync(endpoint.Url), "otel_scope_name=\"[^\"]*\",?", "").Replace("{}", "", StringComparison.Ordinal);
        Assert.Contains("sched_agent_tasks_launched_total{executor=\"process\"} 2", text, StringComparison.Ordinal);
        Assert.Contains("sched_agent_tasks_ended_total{reason=\"Unspecified\",state=\"TaskFinished\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("sched_agent_tasks_ended_total{reason=\"CommandExitedNonzero\",state=\"TaskFailed\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("sched_agent_task_launch_duration_seconds_count{executor=\"process\"} 2", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE sched_agent_tasks gauge", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE sched_agent_status_updates_pending gauge", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_metrics_address_is_an_option_problem()
    {
        var options = new AgentOptions { WorkDir = "/tmp/x", MetricsListen = "somewhere" };
        options.Masters.Add("127.0.0.1:5050");
        Assert.Contains(options.Validate(), p => p.Contains("Metrics address", StringComparison.Ordinal));
    }
}
