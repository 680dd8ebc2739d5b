using Google.Protobuf;
using Sched.V1;
using Scheduler.Protocol;

namespace Scheduler.Rpc.Tests;

public sealed class RoundTripTests : IAsyncLifetime
{
    private RpcServer _server = null!;
    private RpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        _server = await TestService.StartAsync();
        _channel = RpcChannel.ForAddress("127.0.0.1:" + _server.BoundEndpoints[0].Port);
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Unary_round_trip()
    {
        var response = await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest());
        Assert.True(response.Healthy);
        Assert.Equal("test", response.Role);
        Assert.StartsWith("ipv4:127.0.0.1:", response.Version);
    }

    [Fact]
    public async Task Server_streaming_round_trip()
    {
        using var call = _channel.AsyncServerStreamingCall(AgentFilesMethods.TailFile, new TailFileRequest { Offset = 50 });
        // Headers are available before the first message is read.
        Assert.NotNull(await call.ResponseHeadersAsync.WaitAsync(TimeSpan.FromSeconds(10)));
        var got = new List<FileChunk>();
        await foreach (var chunk in call.ResponseStream.ReadAllAsync())
        {
            got.Add(chunk);
        }
        Assert.Equal(50, got.Count);
        Assert.Equal("chunk-49", got[49].Data.ToStringUtf8());
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task Client_streaming_round_trip()
    {
        using var call = _channel.AsyncClientStreamingCall(TestService.Collect);
        for (var i = 0; i < 20; i++)
        {
            await call.RequestStream.WriteAsync(new FileChunk { Data = ByteString.CopyFromUtf8(i.ToString() + ",") });
        }
        await call.RequestStream.CompleteAsync();
        var response = await call;
        Assert.Equal(20, response.Offset);
        Assert.Equal(string.Concat(Enumerable.Range(0, 20).Select(i => i + ",")), response.Data.ToStringUtf8());
    }

    [Fact]
    public async Task Duplex_round_trip()
    {
        using var call = _channel.AsyncDuplexStreamingCall(AgentLinkMethods.Connect);
        for (ulong i = 1; i <= 10; i++)
        {
            await call.RequestStream.WriteAsync(new AgentMessage { Heartbeat = new AgentMessage.Types.Heartbeat { Sequence = i } });
            Assert.True(await call.ResponseStream.MoveNext());
            Assert.Equal(i, call.ResponseStream.Current.Ping.Sequence);
        }
        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext());
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
        Assert.Equal("done", call.GetTrailers().GetValue("x-end"));
        Assert.Equal("", call.GetTrailers().GetValue("x-end-empty"));
    }

    [Fact]
    public async Task Concurrent_writes_on_one_stream_are_serialised_both_ways()
    {
        using var server = _channel.AsyncServerStreamingCall(AgentFilesMethods.TailFile, new TailFileRequest { Offset = 100, Path = "concurrent" });
        var perWriter = new int[10];
        await foreach (var chunk in server.ResponseStream.ReadAllAsync())
        {
            Assert.Equal(100 + (int)chunk.Offset, chunk.Data.Length);
            perWriter[chunk.Offset]++;
        }
        Assert.All(perWriter, n => Assert.Equal(100, n));

        using var client = _channel.AsyncClientStreamingCall(TestService.Collect);
        await Task.WhenAll(Enumerable.Range(0, 10).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < 50; i++)
            {
                await client.RequestStream.WriteAsync(new FileChunk { Data = ByteString.CopyFrom((byte)w) });
            }
        })));
        await client.RequestStream.CompleteAsync();
        var response = await client.ResponseAsync;
        Assert.Equal(500, response.Offset);
        Assert.All(Enumerable.Range(0, 10), w => Assert.Equal(50, response.Data.Count(b => b == w)));
    }
}
