using Google.Protobuf;
using Grpc.Net.Client;
using Sched.V1;
using Scheduler.Protocol;
using Scheduler.Channels;

namespace Scheduler.Hosting.Tests;

/// <summary>The four kinds of call between our client (<see cref="GrpcChannels"/>) and our server
/// (<see cref="GrpcServer"/>) over loopback, on generated service bases and on a hand-written one.</summary>
public sealed class RoundTripTests : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private TestServer _server = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync();
        _channel = _server.Channel();
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Unary_round_trip()
    {
        var response = await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest()).ResponseAsync.WaitAsync(Wait);
        Assert.True(response.Healthy);
        Assert.Equal("test", response.Role);
        Assert.StartsWith("ipv4:127.0.0.1:", response.Version);

        // The generated client reaches the same handler.
        var generated = await new Operator.OperatorClient(_channel).GetHealthAsync(new GetHealthRequest()).ResponseAsync.WaitAsync(Wait);
        Assert.Equal("test", generated.Role);
    }

    [Fact]
    public async Task Server_streaming_round_trip()
    {
        using var call = _channel.AsyncServerStreamingCall(AgentFilesMethods.TailFile, new TailFileRequest { Offset = 50 });
        // Headers are available before the first message is read.
        Assert.NotNull(await call.ResponseHeadersAsync.WaitAsync(Wait));
        var got = new List<FileChunk>();
        await foreach (var chunk in call.ResponseStream.ReadAllAsync().WithCancellation(new CancellationTokenSource(Wait).Token))
        {
            got.Add(chunk);
        }
        Assert.Equal(50, got.Count);
        Assert.Equal("chunk-49", got[49].Data.ToStringUtf8());
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task Client_streaming_round_trip_on_a_hand_written_service()
    {
        using var call = _channel.AsyncClientStreamingCall(EchoService.CollectMethod);
        for (var i = 0; i < 20; i++)
        {
            await call.RequestStream.WriteAsync(new FileChunk { Data = ByteString.CopyFromUtf8(i + ",") });
        }
        await call.RequestStream.CompleteAsync();
        var response = await call.ResponseAsync.WaitAsync(Wait);
        Assert.Equal(20, response.Offset);
        Assert.Equal(string.Concat(Enumerable.Range(0, 20).Select(i => i + ",")), response.Data.ToStringUtf8());

        var echoed = await _channel.AsyncUnaryCall(EchoService.EchoMethod, new FileChunk { Offset = 7, Data = ByteString.CopyFromUtf8("same") }).ResponseAsync.WaitAsync(Wait);
        Assert.Equal(7, echoed.Offset);
        Assert.Equal("same", echoed.Data.ToStringUtf8());
    }

    [Fact]
    public async Task Duplex_round_trip()
    {
        using var call = _channel.AsyncDuplexStreamingCall(AgentLinkMethods.Connect);
        for (ulong i = 1; i <= 10; i++)
        {
            await call.RequestStream.WriteAsync(new AgentMessage { Heartbeat = new AgentMessage.Types.Heartbeat { Sequence = i } });
            Assert.True(await call.ResponseStream.MoveNext().WaitAsync(Wait));
            Assert.Equal(i, call.ResponseStream.Current.Ping.Sequence);
        }
        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext().WaitAsync(Wait));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
        Assert.Equal("done", call.GetTrailers().GetValue("x-end"));
    }
}
