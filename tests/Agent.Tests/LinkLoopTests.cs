using System.Collections.Concurrent;
using System.Net;
using Grpc.Core;
using Grpc.Net.Client;
using Sched.V1;
using Scheduler.Channels;
using Scheduler.Hosting;
using Scheduler.LinkClient;
using Scheduler.Protocol;
using Xunit;

namespace Scheduler.Agent.Tests;

/// <summary>
/// <see cref="LinkLoop"/>, the connect loop the agent and the simulated agents share, against a
/// real gRPC server whose <c>AgentLink.Connect</c> answers each connection as scripted: leader
/// hints are followed, silence past the registration timeout and broken streams are retried, a
/// refusal ends the loop with its reason.
/// </summary>
public sealed class LinkLoopTests : IAsyncLifetime
{
    private readonly ConcurrentQueue<Func<IAsyncStreamReader<AgentMessage>, IServerStreamWriter<MasterMessage>, ServerCallContext, Task>> _script = new();
    private GrpcServer _server = null!;
    private GrpcChannel _channel = null!;

    private string Address => "127.0.0.1:" + _server.BoundEndpoints[0].Port;

    public async Task InitializeAsync()
    {
        var options = new GrpcServerOptions();
        options.Endpoints.Add(new GrpcEndpoint(new IPEndPoint(IPAddress.Loopback, 0)));
        _server = await GrpcServer.StartAsync(options, new GrpcServices().Add(new ScriptedLink(this)));
        _channel = GrpcChannels.ForAddress(Address);
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Hints_silence_and_broken_streams_are_retried_and_a_refusal_ends_the_loop_with_its_reason()
    {
        var registered = 0;
        // 1: not the leader, naming this same server.
        _script.Enqueue((_, _, _) => throw new RpcException(new Status(StatusCode.Unavailable, "not the leader"), new Metadata { { MetadataKeys.Leader, Address } }));
        // 2: takes the registration and never answers.
        _script.Enqueue((_, _, context) => Task.Delay(Timeout.Infinite, context.CancellationToken));
        // 3: registers, then drops the stream.
        _script.Enqueue(async (requests, responses, context) =>
        {
            await requests.MoveNext(context.CancellationToken);
            await responses.WriteAsync(new MasterMessage { Registered = new MasterMessage.Types.Registered { AgentId = "a1" } });
        });
        // 4: refuses the agent.
        _script.Enqueue((_, _, _) => throw new RpcException(new Status(StatusCode.FailedPrecondition, "agent a1 was marked gone")));

        var redirects = new List<string?>();
        var losses = new List<string>();
        var loop = new LinkLoop(new MasterSelection([Address], TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(100), new Random(1)), TimeProvider.System);
        var refusal = await loop.RunAsync(async (address, onRegistered, ct) =>
        {
            using var call = _channel.AsyncDuplexStreamingCall(AgentLinkMethods.Connect, new CallOptions(cancellationToken: ct));
            var first = await LinkLoop.RegisterAsync(call, new AgentMessage { Register = new AgentMessage.Types.Register { AgentInfo = new AgentInfo { Hostname = "h" } } }, address, TimeSpan.FromMilliseconds(500), TimeProvider.System, ct);
            Assert.Equal(MasterMessage.MessageOneofCase.Registered, first.MessageCase);
            registered++;
            onRegistered();
            while (await call.ResponseStream.MoveNext(ct))
            {
            }
        }, (_, leader) => redirects.Add(leader), (_, e) => losses.Add(e.GetType().Name + ": " + e.Message), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal([Address], redirects);
        Assert.Equal(1, registered);
        Assert.Contains(losses, l => l.StartsWith("TimeoutException", StringComparison.Ordinal) && l.Contains("did not answer the registration within 0.5 s", StringComparison.Ordinal));
        Assert.NotNull(refusal);
        Assert.Equal(StatusCode.FailedPrecondition, refusal.Code);
        Assert.False(refusal.IsRejection);
        Assert.Equal("agent a1 was marked gone", refusal.Detail);
        Assert.Empty(_script);
    }

    [Fact]
    public async Task Cancelling_ends_the_loop_without_a_refusal()
    {
        _script.Enqueue((_, _, context) => Task.Delay(Timeout.Infinite, context.CancellationToken));
        using var stop = new CancellationTokenSource();
        var loop = new LinkLoop(new MasterSelection([Address], TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(100), new Random(1)), TimeProvider.System);
        var started = new TaskCompletionSource();
        var run = loop.RunAsync(async (address, _, ct) =>
        {
            using var call = _channel.AsyncDuplexStreamingCall(AgentLinkMethods.Connect, new CallOptions(cancellationToken: ct));
            started.TrySetResult();
            await LinkLoop.RegisterAsync(call, new AgentMessage { Register = new AgentMessage.Types.Register() }, address, timeout: null, TimeProvider.System, ct);
        }, null, null, stop.Token);
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await stop.CancelAsync();
        Assert.Null(await run.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    private sealed class ScriptedLink(LinkLoopTests test) : AgentLink.AgentLinkBase
    {
        public override Task Connect(IAsyncStreamReader<AgentMessage> requestStream, IServerStreamWriter<MasterMessage> responseStream, ServerCallContext context)
            => test._script.TryDequeue(out var step)
                ? step(requestStream, responseStream, context)
                : throw new RpcException(new Status(StatusCode.Unavailable, "script exhausted"));
    }
}
