using Google.Protobuf;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Sched.V1;
using Scheduler.Etcd;
using Scheduler.Master.Election;
using Scheduler.Master.Registry;
using Scheduler.Master.Tests.Harness;
using Scheduler.Protocol;
using Grpc.Core;
using Xunit;
using Scheduler.Channels;

namespace Scheduler.Master.Tests;

/// <summary>The bad input of replicated masters (issue #6), on a real etcd: a registry record that
/// does not parse, two masters with one advertise address, and frameworks re-subscribing after a
/// failover with an id the new leader does not know or has removed.</summary>
public sealed class FailoverBadInputTests : IAsyncLifetime
{
    private LocalEtcdCluster _etcd = null!;
    private EtcdClient _client = null!;

    public async Task InitializeAsync()
    {
        _etcd = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 1 });
        _client = new EtcdClient(new EtcdClientOptions { Endpoints = [.. _etcd.Endpoints] });
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _etcd.DisposeAsync();
    }

    [Fact]
    public async Task A_registry_record_that_does_not_parse_makes_the_master_refuse_to_lead_naming_the_key()
    {
        await _client.PutAsync(new Etcdserverpb.PutRequest { Key = ByteString.CopyFromUtf8("/sched/registry/frameworks/fw-broken"), Value = ByteString.CopyFrom(0xff, 0xff, 0xff, 0x01) }, CancellationToken.None);
        await using var master = await HostedMaster.StartAsync(_etcd, advertise: null);
        var failure = await Assert.ThrowsAsync<RegistryCorruptException>(() => master.Daemon.ExecuteTask!.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("frameworks/fw-broken", failure.Message, StringComparison.Ordinal);
        // It gave the leadership back on its way out: no leader key is left behind.
        var leader = await _client.RangeAsync(new Etcdserverpb.RangeRequest { Key = ByteString.CopyFromUtf8("/sched/leader") }, CancellationToken.None);
        Assert.Empty(leader.Kvs);
    }

    [Fact]
    public async Task Etcd_unreachable_at_start_is_reported_and_retried_and_the_master_leads_once_etcd_is_back()
    {
        await _etcd.KillAsync(0);
        var log = new CapturedLogs(LogLevel.Warning);
        await using var master = await HostedMaster.StartAsync(_etcd, advertise: null, log);
        var address = await master.Daemon.Listening.WaitAsync(TimeSpan.FromSeconds(20));
        using var channel = GrpcChannels.ForAddress(address);

        // It runs and answers as a follower that knows no leader, and says why.
        await Poll.UntilAsync(() => log.Messages.Any(l => l.Contains("Cannot campaign for leadership on etcd", StringComparison.Ordinal) && l.Contains(_etcd.Endpoints[0], StringComparison.Ordinal)),
            TimeSpan.FromSeconds(20), () => "a warning about the unreachable etcd; the log: " + string.Join(" | ", log.Messages));
        Assert.Equal("follower", (await channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest()).ResponseAsync).Role);
        var e = await Assert.ThrowsAsync<RpcException>(() => channel.AsyncUnaryCall(OperatorMethods.GetFrameworks, new GetFrameworksRequest()).ResponseAsync);
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.False(master.Daemon.ExecuteTask!.IsCompleted);

        // etcd comes back: the master leads without being restarted.
        await _etcd.RestartAsync(0);
        await Poll.UntilAsync(async () => (await channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest()).ResponseAsync).Role == "leader",
            TimeSpan.FromSeconds(30), "the master to lead after etcd's return");
    }

    [Fact]
    public async Task A_second_master_with_the_same_advertise_address_stops_with_a_clear_error()
    {
        await using var first = await HostedMaster.StartAsync(_etcd, advertise: "127.0.0.1:15999");
        await first.WaitLeadingAsync();
        await using var second = await HostedMaster.StartAsync(_etcd, advertise: "127.0.0.1:15999");
        var failure = await Assert.ThrowsAsync<MasterAddressConflictException>(() => second.Daemon.ExecuteTask!.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("--advertise", failure.Message, StringComparison.Ordinal);
        Assert.Contains("127.0.0.1:15999", failure.Message, StringComparison.Ordinal);
        Assert.False(first.Daemon.ExecuteTask!.IsCompleted); // the first one keeps leading
    }

    [Fact]
    public async Task After_a_failover_an_unknown_framework_id_is_accepted_and_a_removed_one_refused()
    {
        await using var a = await MasterFixture.StartOnEtcdAsync(_etcd);
        await Poll.UntilAsync(async () => await a.RoleAsync() == "leader", TimeSpan.FromSeconds(20), "the first master to lead");
        await using var b = await MasterFixture.StartOnEtcdAsync(_etcd);

        // A framework registers on the first leader and is torn down there.
        var removed = new TestFramework(a.Channel, TestFramework.DefaultInfo());
        await removed.SubscribeAsync();
        await a.Channel.AsyncUnaryCall(SchedulerMethods.Teardown, new TeardownRequest { FrameworkId = removed.FrameworkId, StreamId = removed.StreamId }).ResponseAsync;
        await removed.DisposeAsync();

        await a.StopAsync();
        await Poll.UntilAsync(async () => await b.RoleAsync() is "leader" or "recovering", TimeSpan.FromSeconds(20), "the second master to take over");

        var again = TestFramework.DefaultInfo();
        again.Id = removed.FrameworkId;
        await using (var refused = new TestFramework(b.Channel, again))
        {
            // The harness reports the stream's end as InvalidOperationException around the status.
            var thrown = await Assert.ThrowsAnyAsync<Exception>(() => refused.SubscribeAsync());
            var e = thrown as RpcException ?? Assert.IsType<RpcException>(thrown.InnerException);
            Assert.Equal(StatusCode.NotFound, e.StatusCode);
            Assert.Contains(removed.FrameworkId, e.Status.Detail, StringComparison.Ordinal);
        }

        // An id this leader never heard of (its registration may not have reached etcd before the
        // old leader died) is accepted as it is, and recorded.
        var unknown = TestFramework.DefaultInfo();
        unknown.Id = "fw-" + Guid.NewGuid().ToString("N");
        await using var accepted = new TestFramework(b.Channel, unknown);
        var subscribed = await accepted.SubscribeAsync();
        Assert.Equal(unknown.Id, subscribed.FrameworkId);
        await Poll.UntilAsync(async () =>
            (await _client.RangeAsync(new Etcdserverpb.RangeRequest { Key = ByteString.CopyFromUtf8("/sched/registry/frameworks/" + unknown.Id) }, CancellationToken.None)).Kvs.Count == 1,
            TimeSpan.FromSeconds(10), "the re-subscribed framework to be recorded in etcd");
    }

    /// <summary>A master daemon in a generic host, whose outcome (<c>ExecuteTask</c>) the test reads.</summary>
    private sealed class HostedMaster : IAsyncDisposable
    {
        private readonly IHost _host;
        private readonly string _workDir;

        private HostedMaster(IHost host, string workDir)
        {
            _host = host;
            _workDir = workDir;
            Daemon = host.Services.GetRequiredService<MasterDaemon>();
        }

        public MasterDaemon Daemon { get; }

        public static async Task<HostedMaster> StartAsync(LocalEtcdCluster etcd, string? advertise, ILoggerProvider? log = null)
        {
            var workDir = Directory.CreateTempSubdirectory("sched-master-test-").FullName;
            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
            builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
            if (log is not null)
            {
                builder.Logging.AddProvider(log);
            }
            builder.Services.AddSchedulerMaster(o =>
            {
                o.Listen = "127.0.0.1:0";
                o.WorkDir = workDir;
                o.Advertise = advertise;
                foreach (var e in etcd.Endpoints)
                {
                    o.EtcdEndpoints.Add(e);
                }
            });
            var host = builder.Build();
            await host.StartAsync();
            return new HostedMaster(host, workDir);
        }

        public async Task WaitLeadingAsync()
        {
            var address = await Daemon.Listening.WaitAsync(TimeSpan.FromSeconds(20));
            using var channel = GrpcChannels.ForAddress(address);
            await Poll.UntilAsync(async () => (await channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest()).ResponseAsync).Role == "leader",
                TimeSpan.FromSeconds(20), "the master to lead");
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                await _host.StopAsync(TimeSpan.FromSeconds(10));
            }
            catch (Exception)
            {
                // The daemon failed (what the test checks): stopping reports it again.
            }
            _host.Dispose();
            Directory.Delete(_workDir, recursive: true);
        }
    }
}
