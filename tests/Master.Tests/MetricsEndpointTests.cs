using System.Diagnostics;
using System.Diagnostics.Metrics;
using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Scheduler.Hosting;
using Xunit;

namespace Scheduler.Master.Tests;

public sealed class MetricsEndpointTests
{
    [Fact]
    public async Task Master_serves_prometheus_metrics_that_follow_the_work_and_pass_promtool()
    {
        await using var cluster = await Cluster.StartAsync(o => o.MetricsListen = "127.0.0.1:0");
        var url = cluster.Master.Daemon.MetricsUrl;
        Assert.NotNull(url);
        await cluster.AddAgentAsync();
        var fw = await cluster.AddFrameworkAsync();
        var offer = await fw.NextOfferAsync();
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("p1", offer, Res.Of(1, 10))]);
        await fw.AckUntilAsync("p1", TaskState.TaskFinished);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var response = await http.GetAsync(url);
        Assert.True(response.IsSuccessStatusCode, $"GET {url}: {(int)response.StatusCode}");
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.ToString(), StringComparison.Ordinal);
        var raw = await response.Content.ReadAsStringAsync();
        var text = WithoutScope(raw);

        Assert.Contains("# TYPE sched_master_offers_total counter", text, StringComparison.Ordinal);
        Assert.True(Sample(text, "sched_master_offers_total") >= 1, text);
        Assert.True(Sample(text, "sched_master_tasks_launched_total") >= 1, text);
        Assert.Contains("# TYPE sched_master_allocation_cycle_duration_seconds histogram", text, StringComparison.Ordinal);
        Assert.Contains("sched_master_allocation_cycle_duration_seconds_bucket{le=\"+Inf\"}", text, StringComparison.Ordinal);
        Assert.Contains("sched_master_status_updates_total{state=\"TaskFinished\"}", text, StringComparison.Ordinal);
        await PromtoolAcceptsAsync(raw);
        Assert.Contains("otel_scope_name=\"Scheduler.Master\"", raw, StringComparison.Ordinal);

        // Gauges are refreshed by the loop once a second: the framework's role appears in a later scrape.
        await Poll.UntilAsync(async () => text.Contains("sched_master_role_weight{role=", StringComparison.Ordinal)
                || (text = WithoutScope(raw = await http.GetStringAsync(url))).Contains("sched_master_role_weight{role=", StringComparison.Ordinal),
            TimeSpan.FromSeconds(15), "a scrape with the role gauges", TimeSpan.FromMilliseconds(100));
        Assert.Contains("sched_master_role_dominant_share_ratio{role=", text, StringComparison.Ordinal);
        Assert.True(Sample(text, "sched_master_agents") >= 1, text);
        Assert.Contains("# TYPE sched_master_allocator_cycles_total counter", text, StringComparison.Ordinal);
        Assert.Contains("sched_master_rpc_server_duration_seconds_count{code=\"OK\",method=\"/sched.v1.Scheduler/Accept\"}", text, StringComparison.Ordinal);
        await PromtoolAcceptsAsync(raw);
    }

    [Fact]
    public async Task Exposition_names_units_labels_and_escapes_per_the_text_format()
    {
        using var meter = new Meter("Scheduler.Test.Metrics." + Guid.NewGuid().ToString("N"));
        var requests = meter.CreateCounter<long>("test.requests", "{request}", "Requests \\ served\nby path");
        var bytes = meter.CreateCounter<double>("test.sent", "By", "Bytes sent");
        var latency = meter.CreateHistogram<double>("test.latency", "s", "Latency");
        var depth = meter.CreateUpDownCounter<int>("test.queue.depth", "{item}", "Queue depth");
        meter.CreateObservableGauge("test.temperature", () => 21.5, "1", "Ratio gauge");
        await using var endpoint = await MetricsEndpoint.StartAsync("127.0.0.1:0", [meter]);
        requests.Add(2, new KeyValuePair<string, object?>("path", "/a\"b"));
        requests.Add(3, new KeyValuePair<string, object?>("path", "/c"));
        bytes.Add(1.5);
        latency.Record(3);
        latency.Record(700);
        depth.Add(5);
        depth.Add(-2);

        var text = await ScrapeAsync(endpoint);
        Assert.Contains("# HELP test_requests_total Requests \\\\ served\\nby path", text, StringComparison.Ordinal);
        Assert.Contains("test_requests_total{path=\"/a\\\"b\"} 2", text, StringComparison.Ordinal);
        Assert.Contains("test_requests_total{path=\"/c\"} 3", text, StringComparison.Ordinal);
        Assert.Contains("test_sent_bytes_total 1.5", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE test_queue_depth gauge", text, StringComparison.Ordinal);
        Assert.Contains("test_queue_depth 3", text, StringComparison.Ordinal);
        Assert.Contains("test_temperature 21.5", text, StringComparison.Ordinal);
        Assert.Contains("test_latency_seconds_count 2", text, StringComparison.Ordinal);
        Assert.Contains("test_latency_seconds_sum 703", text, StringComparison.Ordinal);
        Assert.Contains("test_latency_seconds_bucket{le=\"5\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("test_latency_seconds_bucket{le=\"+Inf\"} 2", text, StringComparison.Ordinal);

        // Cumulative: a second scrape keeps the totals and adds what came since.
        requests.Add(1, new KeyValuePair<string, object?>("path", "/c"));
        Assert.Contains("test_requests_total{path=\"/c\"} 4", await ScrapeAsync(endpoint), StringComparison.Ordinal);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await http.GetAsync(new System.Uri(endpoint.Url, "/other"))).StatusCode);
        await PromtoolAcceptsAsync(await http.GetStringAsync(endpoint.Url));
    }

    [Fact]
    public async Task Only_the_given_meter_instances_are_served_not_namesakes_in_the_same_process()
    {
        var name = "Scheduler.Test.Namesake." + Guid.NewGuid().ToString("N");
        using var mine = new Meter(name);
        using var other = new Meter(name);
        await using var endpoint = await MetricsEndpoint.StartAsync("127.0.0.1:0", [mine]);
        mine.CreateCounter<long>("test.calls", "{call}", "Calls").Add(2);
        other.CreateCounter<long>("test.calls", "{call}", "Calls").Add(40);
        Assert.Contains("test_calls_total 2\n", await ScrapeAsync(endpoint), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("nonsense")]
    [InlineData("127.0.0.1")]
    [InlineData("example.com:9100")]
    public async Task A_bad_listen_address_is_refused_with_what_to_write(string listen)
    {
        using var meter = new Meter("x");
        var e = await Assert.ThrowsAsync<ArgumentException>(() => MetricsEndpoint.StartAsync(listen, [meter]));
        Assert.Contains("HOST:PORT", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Master_options_validator_rejects_a_bad_metrics_address()
    {
        var result = new MasterOptionsValidator().Validate(null, new MasterOptions { WorkDir = "/tmp/x", MetricsListen = "nowhere" });
        Assert.True(result.Failed);
        Assert.Contains("MetricsListen", result.FailureMessage, StringComparison.Ordinal);
    }

    /// <summary>One scrape, as Prometheus does it, without the <c>otel_scope_name</c> label the
    /// exporter puts on every series (the meter's name), so that assertions read as the series do in docs/metrics.md.</summary>
    private static async Task<string> ScrapeAsync(MetricsEndpoint endpoint)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        return WithoutScope(await http.GetStringAsync(endpoint.Url));
    }

    private static string WithoutScope(string text)
        => System.Text.RegularExpressions.Regex.Replace(text, "otel_scope_name=\"[^\"]*\",?", "").Replace("{}", "", StringComparison.Ordinal);

    private static double Sample(string text, string name)
    {
        var total = 0.0;
        var found = false;
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith(name + " ", StringComparison.Ordinal) || line.StartsWith(name + "{", StringComparison.Ordinal))
            {
                total += double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
                found = true;
            }
        }
        Assert.True(found, $"no sample {name} in:\n{text}");
        return total;
    }

    /// <summary>Runs Prometheus' own linter on the exposition (<c>promtool check metrics</c> reads stdin).</summary>
    private static async Task PromtoolAcceptsAsync(string text)
    {
        const string promtool = "/usr/bin/promtool";
        if (!File.Exists(promtool))
        {
            Assert.Fail("promtool is not installed (Debian package 'prometheus'; ./test.sh installs it)");
        }
        var psi = new ProcessStartInfo(promtool) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("check");
        psi.ArgumentList.Add("metrics");
        using var p = Process.Start(psi)!;
        await p.StandardInput.WriteAsync(text);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await p.WaitForExitAsync(timeout.Token);
        var output = await stdout + await stderr;
        // promtool exits 3 for lint problems (naming advice) and 1 for an unparsable exposition.
        Assert.True(p.ExitCode == 0, $"promtool check metrics exit {p.ExitCode}: {output}\n--- exposition ---\n{text}");
    }
}
