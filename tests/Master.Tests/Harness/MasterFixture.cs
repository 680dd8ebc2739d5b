using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Sched.V1;
using Scheduler.Protocol;
using Grpc.Core;
using Xunit;
using Scheduler.Channels;

namespace Scheduler.Master.Tests.Harness;

/// <summary>
/// A real master in-process: generic host + AddSchedulerMaster, Kestrel on 127.0.0.1:0, the
/// embedded file registry in a temp work dir. Short intervals so tests run fast.
/// </summary>
public sealed class MasterFixture : IAsyncDisposable
{
    private readonly IHost _host;
    private readonly bool _ownsWorkDir;
    private bool _stopped;

    private MasterFixture(IHost host, string workDir, bool ownsWorkDir, string address)
    {
        _host = host;
        WorkDir = workDir;
        _ownsWorkDir = ownsWorkDir;
        Address = address;
        Channel = GrpcChannels.ForAddress(address);
    }

    public string WorkDir { get; }

    public MasterDaemon Daemon => _host.Services.GetRequiredService<MasterDaemon>();

    /// <summary>The master's loop while it leads (for tests of its state; run code on it with InvokeAsync).</summary>
    public Scheduler.Master.Loop.MasterLoop Loop => _host.Services.GetRequiredService<Scheduler.Master.Services.MasterRuntime>().CurrentLoop
        ?? throw new InvalidOperationException("the master does not lead");

    public string Address { get; }

    public GrpcChannel Channel { get; }

    public static async Task<MasterFixture> StartAsync(Action<MasterOptions>? configure = null, string? workDir = null, Action<MasterComponents>? components = null, bool waitForLeadership = true, CapturedLogs? logs = null)
    {
        var owns = workDir is null;
        workDir ??= Directory.CreateTempSubdirectory("sched-master-test-").FullName;
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        if (logs is not null)
        {
            builder.Logging.SetMinimumLevel(LogLevel.Information)
                .AddFilter<Microsoft.Extensions.Logging.Console.ConsoleLoggerProvider>(null, LogLevel.Warning)
                .AddProvider(logs);
        }
        builder.Services.AddSchedulerMaster(o =>
        {
            o.Listen = "127.0.0.1:0";
            o.WorkDir = workDir;
            o.HeartbeatInterval = TimeSpan.FromMilliseconds(200);
            o.AgentTimeout = TimeSpan.FromSeconds(3);
            o.FrameworkHeartbeatInterval = TimeSpan.FromMilliseconds(500);
            o.AllocationInterval = TimeSpan.FromMilliseconds(20);
            o.AgentReregisterTimeout = TimeSpan.FromSeconds(2);
            o.AllowAnonymous = true;
            configure?.Invoke(o);
        }, components);
        var host = builder.Build();
        await host.StartAsync();
        var daemon = host.Services.GetRequiredService<MasterDaemon>();
        var address = await daemon.Listening.WaitAsync(TimeSpan.FromSeconds(20));
        var fixture = new MasterFixture(host, workDir, owns, address);
        if (!waitForLeadership)
        {
            return fixture;
        }
        // Serving once GetState answers (the first leadership term has started).
        await Poll.UntilAsync(async () =>
        {
            try
            {
                await fixture.Operator(OperatorMethods.GetFrameworks, new GetFrameworksRequest());
                return true;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(10), "the master to lead");
        return fixture;
    }

    /// <summary>A master on etcd (leader election and registry there), not waiting to lead.</summary>
    public static Task<MasterFixture> StartOnEtcdAsync(LocalEtcdCluster etcd, Action<MasterOptions>? configure = null) => StartAsync(
        o =>
        {
            foreach (var e in etcd.Endpoints)
            {
                o.EtcdEndpoints.Add(e);
            }
            configure?.Invoke(o);
        },
        waitForLeadership: false);

    /// <summary>This master's role as it reports it (<c>leader</c>, <c>follower</c>, …).</summary>
    public async Task<string> RoleAsync() => (await Operator(OperatorMethods.GetHealth, new GetHealthRequest())).Role;

    /// <summary>Waits until one of two masters on the same etcd leads and the other follows.</summary>
    public static async Task<(MasterFixture Leader, MasterFixture Follower)> LeaderAndFollowerAsync(MasterFixture a, MasterFixture b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        MasterFixture? leader = null;
        await Poll.UntilAsync(async () =>
        {
            var ra = await a.RoleAsync();
            var rb = await b.RoleAsync();
            leader = ra is "leader" ? a : rb is "leader" ? b : null;
            return leader is not null && (ra == "follower" || rb == "follower");
        }, TimeSpan.FromSeconds(20), "one leader and one follower");
        return (leader!, leader == a ? b : a);
    }

    public Task<TResponse> Operator<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request)
        where TRequest : class, Google.Protobuf.IMessage<TRequest>
        where TResponse : class, Google.Protobuf.IMessage<TResponse>
        => Channel.AsyncUnaryCall(method, request, new CallOptions(deadline: DateTime.UtcNow + TimeSpan.FromSeconds(10))).ResponseAsync;

    public async Task<IReadOnlyList<AgentState>> GetAgentsAsync() => (await Pages.AllAsync(new GetAgentsRequest(), r => Operator(OperatorMethods.GetAgents, r))).Agents;

    public async Task<IReadOnlyList<FrameworkState>> GetFrameworksAsync() => (await Operator(OperatorMethods.GetFrameworks, new GetFrameworksRequest())).Frameworks;

    public async Task<IReadOnlyList<TaskRecord>> GetTasksAsync(GetTasksRequest? request = null) => (await Pages.AllAsync(request ?? new GetTasksRequest(), r => Operator(OperatorMethods.GetTasks, r))).Tasks;

    /// <summary>Asserts, for every agent, offered + allocated + available == total (scalars).</summary>
    public async Task AssertAccountingAsync()
    {
        foreach (var agent in await GetAgentsAsync())
        {
            var total = Res.Sum(agent.Total);
            var sum = Res.Sum(agent.Offered.Concat(agent.Allocated).Concat(agent.Available));
            foreach (var name in total.Keys.Union(sum.Keys))
            {
                Assert.True(
                    Math.Abs(total.GetValueOrDefault(name) - sum.GetValueOrDefault(name)) < 1e-6,
                    $"agent {agent.Info.Id}: {name} offered {Res.Get(agent.Offered, name)} + allocated {Res.Get(agent.Allocated, name)} + available {Res.Get(agent.Available, name)} != total {total.GetValueOrDefault(name)}");
                Assert.True(Res.Get(agent.Available, name) >= -1e-6, $"agent {agent.Info.Id}: {name} over-committed");
            }
        }
    }

    public async Task StopAsync()
    {
        if (_stopped)
        {
            return;
        }
        _stopped = true;
        Channel.Dispose();
        await _host.StopAsync(TimeSpan.FromSeconds(10));
        _host.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        if (_ownsWorkDir)
        {
            try
            {
                Directory.Delete(WorkDir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
