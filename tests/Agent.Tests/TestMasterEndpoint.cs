using System.Net;
using System.Threading.Channels;
using Sched.V1;
using Scheduler.Hosting;
using Scheduler.Protocol;
using Grpc.Core;

namespace Scheduler.Agent.Tests;

/// <summary>
/// A master-side test double for the AgentLink protocol: a gRPC server serving
/// <c>AgentLink.Connect</c> that either redirects (UNAVAILABLE + sched-leader) or
/// registers the agent, answers heartbeats with pings, records what the agent sends, and lets the
/// test send master messages.
/// </summary>
public sealed class TestMasterEndpoint : IAsyncDisposable
{
    private readonly string? _redirectTo;
    private readonly Channel<MasterMessage> _toAgent = Channel.CreateUnbounded<MasterMessage>();
    private GrpcServer _server = null!;

    private TestMasterEndpoint(string? redirectTo)
    {
        _redirectTo = redirectTo;
    }

    public string Address => $"127.0.0.1:{_server.BoundEndpoints[0].Port}";

    public Channel<AgentMessage> FromAgent { get; } = Channel.CreateUnbounded<AgentMessage>();

    public int Connections;

    /// <summary>The heartbeat interval told at registration.</summary>
    public double RegisteredIntervalSeconds { get; set; } = 0.5;

    /// <summary>The heartbeat interval announced in pings (0: none).</summary>
    public double PingIntervalSeconds { get; set; }

    /// <summary>While set, heartbeats are not answered (a master that went silent).</summary>
    public bool Silent { get; set; }

    public static async Task<TestMasterEndpoint> StartAsync(string? redirectTo = null)
    {
        var m = new TestMasterEndpoint(redirectTo);
        var options = new GrpcServerOptions();
        options.Endpoints.Add(new GrpcEndpoint(new IPEndPoint(IPAddress.Loopback, 0)));
        m._server = await GrpcServer.StartAsync(options, new GrpcServices().Add(new LinkService(m)));
        return m;
    }

    public ValueTask SendAsync(MasterMessage message) => _toAgent.Writer.WriteAsync(message);

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    /// <summary>The served <c>sched.v1.AgentLink</c>.</summary>
    private sealed class LinkService(TestMasterEndpoint master) : AgentLink.AgentLinkBase
    {
        public override Task Connect(IAsyncStreamReader<AgentMessage> requestStream, IServerStreamWriter<MasterMessage> responseStream, ServerCallContext context)
            => master.ConnectAsync(requestStream, responseStream, context);
    }

    private async Task ConnectAsync(IAsyncStreamReader<AgentMessage> requests, IServerStreamWriter<MasterMessage> responses, ServerCallContext context)
    {
        Interlocked.Increment(ref Connections);
        if (_redirectTo is not null)
        {
            var trailers = new Metadata { { MetadataKeys.Leader, _redirectTo } };
            throw new RpcException(new Status(StatusCode.Unavailable, $"not the leader; the leader is {_redirectTo}"), trailers);
        }
        var ct = context.CancellationToken;
        if (!await requests.MoveNext(ct) || requests.Current.MessageCase != AgentMessage.MessageOneofCase.Register)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "register first"));
        }
        await FromAgent.Writer.WriteAsync(requests.Current, ct);
        var id = string.IsNullOrEmpty(requests.Current.Register.AgentInfo.Id) ? "agent-1" : requests.Current.Register.AgentInfo.Id;
        var writeLock = new SemaphoreSlim(1);
        async Task WriteAsync(MasterMessage m)
        {
            await writeLock.WaitAsync(ct);
            try
            {
                await responses.WriteAsync(m, ct);
            }
            finally
            {
                writeLock.Release();
            }
        }
        // 0.5 s: the agent gives up after 3 missed pings, and a loaded CI host can stall a test
        // process for a second; a reconnect would lose what the test sent on the old stream.
        await WriteAsync(new MasterMessage { Registered = new MasterMessage.Types.Registered { AgentId = id, HeartbeatIntervalSeconds = RegisteredIntervalSeconds } });
        var pump = Task.Run(async () =>
        {
            await foreach (var m in _toAgent.Reader.ReadAllAsync(ct))
            {
                await WriteAsync(m);
            }
        }, ct);
        while (await requests.MoveNext(ct))
        {
            var m = requests.Current;
            if (m.MessageCase == AgentMessage.MessageOneofCase.Heartbeat && !Silent)
            {
                await WriteAsync(new MasterMessage { Ping = new MasterMessage.Types.Ping { Sequence = m.Heartbeat.Sequence, HeartbeatIntervalSeconds = PingIntervalSeconds } });
            }
            await FromAgent.Writer.WriteAsync(m, ct);
        }
    }
}
