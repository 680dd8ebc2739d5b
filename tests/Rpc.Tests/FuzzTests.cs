using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Google.Protobuf;
using Sched.V1;
using Scheduler.Protocol;

namespace Scheduler.Rpc.Tests;

[CollectionDefinition("fuzz", DisableParallelization = true)]
public sealed class FuzzCollection;

/// <summary>
/// Seeded malformed input against the server: raw gRPC bodies over HTTP/2 (truncated messages,
/// wrong lengths, garbage protobuf, bad flags, oversized prefixes, aborted bodies) and raw
/// HTTP/2 frames over a socket. Every request must end with a gRPC status or a reset stream, and
/// the server must keep serving.
/// </summary>
[Collection("fuzz")]
public sealed class FuzzTests : IAsyncLifetime
{
    private const int Seed = 20261121;
    private static readonly string[] Paths =
    [
        "/sched.v1.Operator/GetHealth",
        "/sched.v1.AgentFiles/TailFile",
        "/test.Echo/Collect",
        "/sched.v1.AgentLink/Connect",
        "/no.Such/Method",
    ];

    private RpcServer _server = null!;
    private HttpMessageInvoker _http = null!;
    private string _base = "";

    public async Task InitializeAsync()
    {
        _server = await TestService.StartAsync(new RpcServerOptions { MaxReceiveMessageSize = 64 * 1024 });
        _base = "http://127.0.0.1:" + _server.BoundEndpoints[0].Port;
        _http = new HttpMessageInvoker(new SocketsHttpHandler { EnableMultipleHttp2Connections = true });
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
    }

    private static byte[] Frame(byte flag, uint length, ReadOnlySpan<byte> payload)
    {
        var b = new byte[5 + payload.Length];
        b[0] = flag;
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(1), length);
        payload.CopyTo(b.AsSpan(5));
        return b;
    }

    private static byte[] Body(Random rng, out bool gzipHeader)
    {
        gzipHeader = false;
        var junk = new byte[rng.Next(0, 300)];
        rng.NextBytes(junk);
        switch (rng.Next(8))
        {
            case 0: return junk;                                                        // random bytes
            case 1: return Frame(0, (uint)(junk.Length + rng.Next(1, 1000)), junk);      // truncated message
            case 2: return Frame(0, (uint)rng.Next(0, Math.Max(1, junk.Length)), junk);  // length shorter than data
            case 3: return Frame(0, (uint)junk.Length, junk);                           // garbage protobuf
            case 4: return Frame(0, rng.Next(2) == 0 ? 0x7FFFFFFFu : (uint)rng.Next(64 * 1024 + 1, int.MaxValue), junk); // oversized prefix
            case 5:
                gzipHeader = rng.Next(2) == 0;
                return Frame(1, (uint)junk.Length, junk);                               // compressed, bad or no encoding
            case 6: return Frame((byte)rng.Next(2, 256), (uint)junk.Length, junk);      // invalid flag byte
            default:
                var ok = new GetHealthRequest().ToByteArray();
                return [.. Frame(0, (uint)ok.Length, ok), .. Frame(0, (uint)junk.Length, junk), .. junk.AsSpan(0, junk.Length / 3)];
        }
    }

    /// <summary>Sends one request; returns the grpc-status, or -1 for a reset stream.</summary>
    private async Task<int> SendAsync(string path, HttpContent content, bool gzip, CancellationToken ct)
    {
        content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        using var request = new HttpRequestMessage(HttpMethod.Post, _base + path)
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        request.Headers.TryAddWithoutValidation("te", "trailers");
        if (gzip)
        {
            request.Headers.TryAddWithoutValidation("grpc-encoding", "gzip");
        }
        try
        {
            using var response = await _http.SendAsync(request, ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            if (response.Headers.TryGetValues("grpc-status", out var early))
            {
                return int.Parse(early.Single());
            }
            var body = await response.Content.ReadAsByteArrayAsync(ct);
            Assert.True(response.TrailingHeaders.TryGetValues("grpc-status", out var status), $"{path}: no grpc-status after {body.Length} body bytes");
            return int.Parse(status.Single());
        }
        catch (HttpRequestException ex) when (ex.InnerException is IOException)
        {
            return -1;
        }
        catch (IOException)
        {
            return -1;
        }
    }

    [Fact]
    public async Task Malformed_grpc_bodies_get_a_status_or_reset_and_the_server_keeps_serving()
    {
        var rng = new Random(Seed);
        var cases = Enumerable.Range(0, 300).Select(i =>
        {
            var body = Body(rng, out var gz);
            return (Path: Paths[rng.Next(Paths.Length)], Body: body, Gzip: gz);
        }).ToArray();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var outcomes = new Dictionary<int, int>();
        using var gate = new SemaphoreSlim(16);
        var tasks = cases.Select(async c =>
        {
            await gate.WaitAsync(timeout.Token);
            try
            {
                return await SendAsync(c.Path, new ByteArrayContent(c.Body), c.Gzip, timeout.Token);
            }
            finally
            {
                gate.Release();
            }
        });
        foreach (var code in await Task.WhenAll(tasks))
        {
            outcomes[code] = outcomes.GetValueOrDefault(code) + 1;
            Assert.InRange(code, -1, 16);
        }
        // The server answered UNKNOWN (a handler crash) to none of them.
        Assert.False(outcomes.ContainsKey((int)StatusCode.Unknown), string.Join(", ", outcomes));
        Assert.True(outcomes.GetValueOrDefault((int)StatusCode.Internal) > 0);
        Assert.True(outcomes.GetValueOrDefault((int)StatusCode.ResourceExhausted) > 0);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task Oversized_prefix_is_rejected_before_the_body_arrives_without_allocating_it()
    {
        var before = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = 0; i < 20; i++)
        {
            // Only the 5-byte prefix is sent; the body stays open. The status must come anyway.
            var content = new HeldOpenContent(Frame(0, 0x7FFFFFFF, []));
            var code = await SendAsync(Paths[i % 4], content, false, new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
            content.Release();
            Assert.True(code is (int)StatusCode.ResourceExhausted or -1, "status " + code);
        }
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.True(allocated < 64L * 1024 * 1024, $"allocated {allocated} bytes for 20 rejected 2 GiB prefixes");
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task Aborted_request_bodies_do_not_hurt_the_server()
    {
        var rng = new Random(Seed + 1);
        for (var i = 0; i < 40; i++)
        {
            var junk = new byte[rng.Next(1, 100)];
            rng.NextBytes(junk);
            using var cts = new CancellationTokenSource();
            var content = new HeldOpenContent(Frame(0, 1000, junk));
            var send = SendAsync(Paths[rng.Next(4)], content, false, cts.Token);
            await content.Written.WaitAsync(TimeSpan.FromSeconds(10));
            await cts.CancelAsync();
            try
            {
                await send;
            }
            catch (OperationCanceledException)
            {
            }
            content.Release();
        }
        await AssertStillServingAsync();
        await Poll.UntilAsync(() => _server.RunningCalls == 0, TimeSpan.FromSeconds(10), () => "every call to end; still running: " + _server.RunningCalls);
    }

    [Fact]
    public async Task Raw_malformed_http2_frames_do_not_crash_the_server()
    {
        var rng = new Random(Seed + 2);
        var preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();
        for (var i = 0; i < 60; i++)
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(_server.BoundEndpoints[0]);
            var bytes = new List<byte>(preface);
            bytes.AddRange(RawFrame(4, 0, 0, [])); // empty SETTINGS
            for (var f = rng.Next(1, 5); f > 0; f--)
            {
                var payload = new byte[rng.Next(0, 64)];
                rng.NextBytes(payload);
                var frame = RawFrame((byte)rng.Next(0, 10), (byte)rng.Next(256), rng.Next(0, 8), payload);
                if (rng.Next(3) == 0)
                {
                    // Declared length larger than what follows: a truncated frame.
                    BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(1), (ushort)(payload.Length + rng.Next(1, 500)));
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
            catch (Exception ex) when (ex is SocketException or OperationCanceledException)
            {
                // The server may close or reset the connection: that is a fine answer.
            }
        }
        await AssertStillServingAsync();
    }

    private static byte[] RawFrame(byte type, byte flags, int streamId, byte[] payload)
    {
        var f = new byte[9 + payload.Length];
        f[0] = (byte)(payload.Length >> 16);
        f[1] = (byte)(payload.Length >> 8);
        f[2] = (byte)payload.Length;
        f[3] = type;
        f[4] = flags;
        BinaryPrimitives.WriteInt32BigEndian(f.AsSpan(5), streamId);
        payload.CopyTo(f, 9);
        return f;
    }

    private async Task AssertStillServingAsync()
    {
        using var channel = RpcChannel.ForAddress(_base);
        var r = await channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest()).ResponseAsync.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(r.Healthy);
    }

    /// <summary>A request body that writes its bytes and then stays open until released.</summary>
    private sealed class HeldOpenContent(byte[] bytes) : HttpContent
    {
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _written = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Written => _written.Task;

        public void Release() => _release.TrySetResult();

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync(bytes);
            await stream.FlushAsync();
            _written.TrySetResult();
            await _release.Task;
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
