using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using FsCheck;
using FsCheck.Fluent;
using Sched.V1;
using Scheduler.Master.State;
using Scheduler.Master.Telemetry;
using Scheduler.Master.Tests.Harness;
using Xunit;

namespace Scheduler.Master.Tests;

public sealed class MasterHostTests
{
    [Fact]
    public async Task Invalid_options_exit_with_code_2_and_say_why_on_the_given_error_writer()
    {
        var options = new MasterOptions { Listen = "not-an-address", WorkDir = "" };
        using var output = new StringWriter();
        using var error = new StringWriter();
        Assert.Equal(2, await MasterHost.RunAsync(options, CancellationToken.None, announcements: new Scheduler.Hosting.DaemonAnnouncements(output, error)));
        Assert.StartsWith("master: invalid options: ", error.ToString(), StringComparison.Ordinal);
        Assert.Contains("not-an-address", error.ToString(), StringComparison.Ordinal);
        Assert.Equal("", output.ToString());
    }

    [Fact]
    public async Task Port_in_use_exits_with_code_1()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var workDir = Directory.CreateTempSubdirectory("sched-master-port-").FullName;
        try
        {
            var options = new MasterOptions { Listen = $"127.0.0.1:{port}", WorkDir = workDir, AllowAnonymous = true };
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            using var output = new StringWriter();
            using var error = new StringWriter();
            Assert.Equal(1, await MasterHost.RunAsync(options, cts.Token, announcements: new Scheduler.Hosting.DaemonAnnouncements(output, error)));
            Assert.StartsWith("master", error.ToString(), StringComparison.Ordinal);
            Assert.DoesNotContain("master listening on", output.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(workDir, recursive: true);
        }
    }

    [Fact]
    public void Options_validator_names_what_to_fix()
    {
        var result = new MasterOptionsValidator().Validate(null, new MasterOptions
        {
            Listen = "127.0.0.1:99999",
            WorkDir = "/tmp/x",
            AgentTimeout = TimeSpan.FromMilliseconds(100),
            HeartbeatInterval = TimeSpan.FromSeconds(1),
            OfferTimeout = TimeSpan.Zero,
        });
        Assert.True(result.Failed);
        Assert.Contains("Listen", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("AgentTimeout", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("OfferTimeout", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metrics_count_offers_launches_and_updates()
    {
        var seen = new Dictionary<string, long>();
        var gate = new Lock();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == MasterMetrics.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            lock (gate)
            {
                seen[instrument.Name] = seen.GetValueOrDefault(instrument.Name) + value;
            }
        });
        listener.Start();

        await using var cluster = await Cluster.StartAsync();
        await cluster.AddAgentAsync();
        var fw = await cluster.AddFrameworkAsync();
        var offer = await fw.NextOfferAsync();
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("m1", offer, Res.Of(1, 10))]);
        await fw.AckUntilAsync("m1", TaskState.TaskFinished);
        lock (gate)
        {
            Assert.True(seen.GetValueOrDefault("sched.master.offers") >= 1);
            Assert.True(seen.GetValueOrDefault("sched.master.tasks.launched") >= 1);
            Assert.True(seen.GetValueOrDefault("sched.master.status_updates") >= 3);
        }
    }

    [Fact]
    public void Resource_bag_add_then_subtract_restores_and_contains_holds()
    {
        var gen = Gen.Choose(0, 1000).Three().ToArbitrary();
        Prop.ForAll(gen, t =>
        {
            var (a, b, p) = t;
            var baseBag = new ResourceBag([Res.Scalar("cpus", a / 10.0), Res.Scalar("mem", b), Ports(31000, 31000 + (ulong)p)]);
            var part = new List<Resource> { Res.Scalar("cpus", a / 20.0), Ports(31000, 31000 + (ulong)(p / 2)) };
            // part ⊆ base, so base − part + part == base (ranges are sets, scalars add up).
            var containsPart = baseBag.Contains(part);
            var copy = baseBag.Clone();
            copy.Subtract(part);
            var removed = !copy.Contains(part) || a == 0;
            copy.Add(part);
            return containsPart && removed && copy.SameAs(baseBag);
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(200));
    }

    private static Resource Ports(ulong begin, ulong end) => new() { Name = "ports", Ranges = new Ranges { Range = { new Sched.V1.Range { Begin = begin, End = end } } } };
}
