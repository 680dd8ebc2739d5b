using System.Net.Sockets;
using Google.Protobuf;
using Sched.V1;
using Scheduler.Protocol;
using Scheduler.Channels;

namespace Scheduler.Hosting.Tests;

[CollectionDefinition("fuzz", DisableParallelization = true)]
public sealed class FuzzCollection;

/// <summary>
/// Malformed and heavy input against <see cref="GrpcServer"/> as raw HTTP/2 frames over sockets
/// (<see cref="RawHttp2Connection"/>): faulty gRPC bodies, unknown methods, bad content types,
/// oversized and aborted messages, garbage frames, and thousands of concurrent streams. Every
/// stream must get the answer its fault calls for, and the server must keep serving.
/// </summary>
[Collection("fuzz")]
public sealed class FuzzTests : IAsyncLifetime
{
    private const int Seed = 20261121;
    private const int MaxReceive = 64 * 1024;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private static readonly string[] Methods =
    [
        "/sched.v1.Operator/GetHealth",
        "/sched.v1.AgentFiles/TailFile",
        "/test.Echo/Collect",
        "/sched.v1.AgentLink/Connect",
    ];

    private const string Unknown = "/no.Such/Method";

    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync(new GrpcServerOptions { MaxReceiveMessageSize = MaxReceive });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static byte[] Message(ReadOnlySpan<byte> payload, byte flag = 0, uint? declared = null) => RawHttp2Connection.GrpcMessage(payload, flag, declared);

    /// <summary>A faulty request: its body, content type and extra headers, and the answer due
    /// (HTTP status, grpc-status, start of grpc-message) per method kind.</summary>
    private sealed record Fault(string Name, byte[] Body, string? ContentType, (string, string)[] Headers, Func<string, (int Http, int? Grpc, string Detail)> Expected);

    private static readonly Fault[] Faults =
    [
        new("truncated message", Message([1, 2], declared: 10), "application/grpc", [], _ => (200, 13, "Incomplete message.")),
        new("partial length prefix", [0, 0, 0], "application/grpc", [], _ => (200, 13, "Incomplete message.")),
        new("length prefix over the limit", Message([], declared: 0x7FFFFFFF), "application/grpc", [], _ => (200, 8, "Received message exceeds the maximum configured message size.")),
        new("message one byte over the limit", Message(new byte[MaxReceive + 1]), "application/grpc", [], _ => (200, 8, "Received message exceeds the maximum configured message size.")),
        new("compressed flag without grpc-encoding", Message([1, 2, 3], flag: 1), "application/grpc", [], _ => (200, 13, "Request did not include grpc-encoding")),
        new("unsupported grpc-encoding", Message([1, 2, 3], flag: 1), "application/grpc", [("grpc-encoding", "snappy")], _ => (200, 12, "Unsupported grpc-encoding value 'snappy'")),
        new("gzip flag on bytes that are not gzip", Message([1, 2, 3], flag: 1), "application/grpc", [("grpc-encoding", "gzip")], _ => (200, 3, "cannot decompress the request: it is not valid gzip")),
        // Grpc.AspNetCore answers a flag byte it does not know as it answers a handler exception:
        // UNKNOWN with a fixed text (gRPC's spec and the old stack said INTERNAL).
        // A message that does not parse is the caller's mistake, named with the type expected.
        new("bytes that are not protobuf", Message([0x0F, 0xFF, 0xFF]), "application/grpc", [], m => (200, 3, "cannot parse sched.v1." + RequestType(m) + ": ")),
        new("invalid flag byte", Message([], flag: 7), "application/grpc", [], _ => (200, 2, "Exception was thrown by handler.")),
        new("two messages", [.. Message([]), .. Message([])], "application/grpc", [],
            m => m is "/test.Echo/Collect" or "/sched.v1.AgentLink/Connect" ? (200, 0, "") : (200, 13, "Additional data after the message received.")),
        new("text/plain content type", Message([]), "text/plain", [], _ => (415, 13, "Content-Type 'text/plain' is not supported.")),
        new("no content type", Message([]), null, [], _ => (415, 13, "Content-Type is missing from the request.")),
    ];

    private static string RequestType(string path) => path switch
    {
        "/sched.v1.Operator/GetHealth" => "GetHealthRequest",
        "/sched.v1.AgentFiles/TailFile" => "TailFileRequest",
        "/test.Echo/Collect" => "FileChunk",
        "/sched.v1.AgentLink/Connect" => "AgentMessage",
        _ => throw new ArgumentException(path),
    };

    [Fact]
    public async Task Each_faulty_request_gets_the_answer_for_its_fault_and_unknown_methods_UNIMPLEMENTED()
    {
        await using var connection = await RawHttp2Connection.ConnectAsync(_server.EndPoint);
        var wrong = new List<string>();
        foreach (var fault in Faults)
        {
            foreach (var path in Methods.Append(Unknown))
            {
                var stream = await connection.OpenAsync(path, fault.ContentType, fault.Headers);
                await connection.SendDataAsync(stream, fault.Body, endStream: true);
                await stream.Ended.WaitAsync(Wait);
                var (http, grpc, detail) = path != Unknown ? fault.Expected(path)
                    : fault.ContentType is null or "text/plain" ? (404, null, "") // not a gRPC request: plain HTTP
                    : (200, 12, "Service is unimplemented.");
                if (stream.HttpStatus != http || stream.GrpcStatus != grpc || !(stream.GrpcMessage ?? "").StartsWith(detail, StringComparison.Ordinal))
                {
                    wrong.Add($"{fault.Name} to {path}: expected http {http} grpc-status {grpc} '{detail}…', got {stream.Outcome}");
                }
            }
        }
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
        Assert.Equal(0, _server.RunningCalls);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task Seeded_random_bodies_each_end_with_a_status_and_the_server_keeps_serving()
    {
        var rng = new Random(Seed);
        await using var connection = await RawHttp2Connection.ConnectAsync(_server.EndPoint);
        var streams = new List<(RawStream Stream, string Path)>();
        for (var i = 0; i < 300; i++)
        {
            var junk = new byte[rng.Next(0, 300)];
            rng.NextBytes(junk);
            byte[] body = rng.Next(7) switch
            {
                0 => junk,
                5 => Message(junk, declared: (uint)rng.Next(MaxReceive + 1, int.MaxValue)),
                1 => Message(junk, declared: (uint)(junk.Length + rng.Next(1, 1000))),
                2 => Message(junk, declared: (uint)rng.Next(0, Math.Max(1, junk.Length))),
                3 => Message(junk),
                4 => Message(junk, flag: (byte)rng.Next(1, 256)),
                _ => [.. Message(new GetHealthRequest().ToByteArray()), .. Message(junk), .. junk.AsSpan(0, junk.Length / 3)],
            };
            var path = rng.Next(10) == 0 ? Unknown : Methods[rng.Next(Methods.Length)];
            var gzip = rng.Next(4) == 0 ? new[] { ("grpc-encoding", "gzip") } : [];
            var stream = await connection.OpenAsync(path, "application/grpc", gzip);
            await connection.SendDataAsync(stream, body, endStream: true);
            streams.Add((stream, path));
            if (streams.Count % 50 == 0)
            {
                // Keep well under the server's concurrent-stream limit.
                await Task.WhenAll(streams.Select(s => s.Stream.Ended)).WaitAsync(Wait);
            }
        }
        await Task.WhenAll(streams.Select(s => s.Stream.Ended)).WaitAsync(Wait);
        var outcomes = streams.GroupBy(s => s.Stream.GrpcStatus?.ToString() ?? s.Stream.Outcome).ToDictionary(g => g.Key, g => g.Count());
        var summary = string.Join(", ", outcomes.Select(o => $"{o.Key}: {o.Value}"));
        Assert.All(streams, s => Assert.True(s.Stream.GrpcStatus is not null, $"{s.Path}: {s.Stream.Outcome} ({summary})"));
        Assert.All(streams.Where(s => s.Path == Unknown), s => Assert.Equal((int)StatusCode.Unimplemented, s.Stream.GrpcStatus));
        // UNKNOWN only ever with the fixed text: no handler's message leaks.
        Assert.All(streams.Where(s => s.Stream.GrpcStatus == (int)StatusCode.Unknown), s => Assert.Equal("Exception was thrown by handler.", s.Stream.GrpcMessage));
        Assert.True(outcomes.GetValueOrDefault(((int)StatusCode.Internal).ToString()) > 0, summary);
        Assert.True(outcomes.GetValueOrDefault(((int)StatusCode.ResourceExhausted).ToString()) > 0, summary);
        await Poll.UntilAsync(() => _server.RunningCalls == 0, Wait, () => "every call to end; still running: " + _server.RunningCalls);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task Oversized_prefix_is_refused_before_the_body_arrives_without_allocating_it()
    {
        await using var connection = await RawHttp2Connection.ConnectAsync(_server.EndPoint);
        var before = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = 0; i < 20; i++)
        {
            // Only the 5-byte prefix of a 2 GiB message is sent; the request stays open.
            var stream = await connection.OpenAsync(Methods[i % Methods.Length]);
            await connection.SendDataAsync(stream, Message([], declared: 0x7FFFFFFF), endStream: false);
            await stream.Ended.WaitAsync(Wait);
            Assert.True(stream.GrpcStatus == (int)StatusCode.ResourceExhausted, stream.Outcome);
        }
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.True(allocated < 64L * 1024 * 1024, $"allocated {allocated} bytes for 20 refused 2 GiB prefixes");
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task Requests_reset_mid_message_end_their_calls()
    {
        var rng = new Random(Seed + 1);
        await using var connection = await RawHttp2Connection.ConnectAsync(_server.EndPoint);
        for (var i = 0; i < 40; i++)
        {
            var junk = new byte[rng.Next(1, 100)];
            rng.NextBytes(junk);
            var stream = await connection.OpenAsync(Methods[rng.Next(Methods.Length)]);
            // Part of a 1000-byte message, then the client gives up on the stream (CANCEL).
            await connection.SendDataAsync(stream, Message(junk, declared: 1000), endStream: false);
            await connection.SendBytesAsync(RawHttp2Connection.Frame(RawHttp2Connection.RstStream, 0, stream.Id, [0, 0, 0, 8]));
        }
        await Poll.UntilAsync(() => _server.RunningCalls == 0, Wait, () => "every call to end; still running: " + _server.RunningCalls);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task Garbage_frames_do_not_crash_the_server()
    {
        var rng = new Random(Seed + 2);
        for (var i = 0; i < 60; i++)
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(_server.EndPoint);
            var bytes = new List<byte>(RawHttp2Connection.Preface);
            bytes.AddRange(RawHttp2Connection.Frame(RawHttp2Connection.Settings, 0, 0, []));
            for (var f = rng.Next(1, 5); f > 0; f--)
            {
                var payload = new byte[rng.Next(0, 64)];
                rng.NextBytes(payload);
                var frame = RawHttp2Connection.Frame((byte)rng.Next(0, 10), (byte)rng.Next(256), rng.Next(0, 8), payload);
                if (rng.Next(3) == 0)
                {
                    // Declared length larger than what follows: a truncated frame.
                    frame[1] = (byte)(payload.Length + rng.Next(1, 200));
                }
                bytes.AddRange(frame);
            }
            try
            {
                await socket.SendAsync(bytes.ToArray());
                socket.Shutdown(SocketShutdown.Send);
                var sink = new byte[4096];
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                while (await socket.ReceiveAsync(sink, cts.Token) > 0)
                {
                }
            }
            catch (SocketException)
            {
                // The server may reset the connection: a fine answer to garbage.
            }
        }
        // The server closed every garbage connection itself (the reads above ended), and serves.
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task Two_thousand_concurrent_streams_over_four_connections_are_each_answered()
    {
        const int connections = 4, perConnection = 500;
        var clients = await Task.WhenAll(Enumerable.Range(0, connections).Select(_ => RawHttp2Connection.ConnectAsync(_server.EndPoint)));
        try
        {
            // Every stream sends a heartbeat and stays open until all have their ping back: the
            // 2,000 calls are in their handlers at the same time.
            var streams = new List<(RawHttp2Connection Connection, RawStream Stream, ulong Sequence)>();
            for (var i = 0; i < connections * perConnection; i++)
            {
                var c = clients[i % connections];
                var s = await c.OpenAsync("/sched.v1.AgentLink/Connect");
                var heartbeat = new AgentMessage { Heartbeat = new AgentMessage.Types.Heartbeat { Sequence = (ulong)i } }.ToByteArray();
                await c.SendDataAsync(s, Message(heartbeat), endStream: false);
                streams.Add((c, s, (ulong)i));
            }
            await Task.WhenAll(streams.Select(s => s.Stream.FirstMessage)).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(connections * perConnection, _server.RunningCalls);
            foreach (var (c, s, _) in streams)
            {
                await c.SendDataAsync(s, ReadOnlyMemory<byte>.Empty, endStream: true);
            }
            await Task.WhenAll(streams.Select(s => s.Stream.Ended)).WaitAsync(TimeSpan.FromSeconds(60));
            foreach (var (_, s, sequence) in streams)
            {
                Assert.True(s.GrpcStatus == 0, s.Outcome);
                Assert.Equal("done", RawStream.Header(s.Trailers!, "x-end"));
                Assert.Equal(sequence, MasterMessage.Parser.ParseFrom(s.Body.AsSpan(5)).Ping.Sequence);
            }
        }
        finally
        {
            foreach (var c in clients)
            {
                await c.DisposeAsync();
            }
        }
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task Streams_over_the_concurrent_stream_limit_are_refused_and_the_others_served()
    {
        await using var limited = await TestServer.StartAsync(new GrpcServerOptions { MaxConcurrentStreams = 20 });
        await using var connection = await RawHttp2Connection.ConnectAsync(limited.EndPoint);
        var held = new List<RawStream>();
        for (var i = 0; i < 20; i++)
        {
            var s = await connection.OpenAsync("/sched.v1.AgentLink/Connect");
            await connection.SendDataAsync(s, Message(new AgentMessage { Heartbeat = new() { Sequence = (ulong)i } }.ToByteArray()), endStream: false);
            held.Add(s);
        }
        await Task.WhenAll(held.Select(s => s.FirstMessage)).WaitAsync(Wait);
        // The 21st stream, past the limit the server announced: refused (REFUSED_STREAM = 7).
        var extra = await connection.OpenAsync("/sched.v1.AgentLink/Connect");
        await extra.Ended.WaitAsync(Wait);
        Assert.True(extra.ResetCode == 7, extra.Outcome);
        foreach (var s in held)
        {
            await connection.SendDataAsync(s, ReadOnlyMemory<byte>.Empty, endStream: true);
        }
        await Task.WhenAll(held.Select(s => s.Ended)).WaitAsync(Wait);
        Assert.All(held, s => Assert.True(s.GrpcStatus == 0, s.Outcome));
        // With room again, the same connection takes new streams.
        var after = await connection.OpenAsync("/sched.v1.Operator/GetHealth");
        await connection.SendDataAsync(after, Message([]), endStream: true);
        await after.Ended.WaitAsync(Wait);
        Assert.True(after.GrpcStatus == 0, after.Outcome);
    }

    private async Task AssertStillServingAsync()
    {
        using var channel = _server.Channel();
        var r = await channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest()).ResponseAsync.WaitAsync(Wait);
        Assert.True(r.Healthy);
    }
}
