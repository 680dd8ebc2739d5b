using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Sched.V1;
using Scheduler.Protocol;

namespace Scheduler.Rpc.Tests;

/// <summary>Metadata, statuses, deadlines, cancellation, limits, compression, TLS and concurrency
/// between our client and our server over loopback.</summary>
public sealed class CallBehaviourTests : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private RpcServer _server = null!;
    private RpcChannel _channel = null!;

    private readonly CapturingLoggerProvider _logs = new();

    public async Task InitializeAsync()
    {
        var loggerFactory = LoggerFactory.Create(b => b.AddProvider(_logs).SetMinimumLevel(LogLevel.Debug));
        _server = await TestService.StartAsync(new RpcServerOptions { MaxReceiveMessageSize = 64 * 1024, MaxSendMessageSize = 64 * 1024, LoggerFactory = loggerFactory });
        _channel = RpcChannel.ForAddress("127.0.0.1:" + _server.BoundEndpoints[0].Port, new RpcChannelOptions { MaxReceiveMessageSize = 64 * 1024, MaxSendMessageSize = 64 * 1024 });
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _server.DisposeAsync();
    }

    private static CallOptions With(params (string Key, string Value)[] headers)
    {
        var m = new Metadata();
        foreach (var (k, v) in headers)
        {
            m.Add(k, v);
        }
        return new CallOptions(m);
    }

    [Fact]
    public async Task Metadata_flows_both_ways_including_binary()
    {
        var headers = new Metadata { { "x-echo", "hello" }, { "x-echo-bin", new byte[] { 0, 1, 2, 250, 255 } } };
        using var call = _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), new CallOptions(headers));
        var responseHeaders = await call.ResponseHeadersAsync.WaitAsync(Wait);
        await call.ResponseAsync.WaitAsync(Wait);
        Assert.Equal("hello", responseHeaders.GetValue("x-echo"));
        Assert.Equal("hello", call.GetTrailers().GetValue("x-echo-trailer"));
        Assert.Equal(new byte[] { 0, 1, 2, 250, 255 }, call.GetTrailers().Get("x-echo-bin")!.ValueBytes);
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task Error_status_with_non_ascii_message_and_trailers_round_trips()
    {
        const string detail = "Überlast: 100% voll — réessayez plus tard ✓";
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), With(("x-mode", "fail"), ("x-detail", "placeholder"))));
        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
        Assert.Equal("requested", ex.Trailers.GetValue("x-reason"));
        Assert.Equal("", ex.Trailers.GetValue("x-empty"));

        // Non-ASCII text cannot travel in an ASCII header, so this handler takes it from a -bin key.
        var registry = new ServiceRegistry().AddUnary(OperatorMethods.GetHealth, (_, ctx) =>
            throw new RpcException(new Status(StatusCode.FailedPrecondition, System.Text.Encoding.UTF8.GetString(ctx.RequestHeaders.Get("x-detail-bin")!.ValueBytes))));
        var options = new RpcServerOptions();
        options.Endpoints.Add(new RpcEndpoint(new IPEndPoint(IPAddress.Loopback, 0)));
        await using var server = new RpcServer(registry, options);
        await server.StartAsync();
        using var channel = RpcChannel.ForAddress("127.0.0.1:" + server.BoundEndpoints[0].Port);
        var headers = new Metadata { { "x-detail-bin", System.Text.Encoding.UTF8.GetBytes(detail) } };
        var ex2 = await Assert.ThrowsAsync<RpcException>(async () => await channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), new CallOptions(headers)));
        Assert.Equal(detail, ex2.Status.Detail);
        Assert.Equal(StatusCode.FailedPrecondition, ex2.StatusCode);
    }

    [Fact]
    public async Task Deadline_is_sent_and_surfaced_to_the_handler()
    {
        var response = await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), With(("x-mode", "deadline")).WithTimeout(TimeSpan.FromSeconds(30)));
        var ms = double.Parse(response.Role);
        Assert.InRange(ms, 25_000, 30_000);
        var none = await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), With(("x-mode", "deadline")));
        Assert.Equal("none", none.Role);
    }

    [Fact]
    public async Task Deadline_exceeded_ends_the_call_with_DEADLINE_EXCEEDED()
    {
        var started = DateTime.UtcNow;
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), With(("x-mode", "sleep")).WithTimeout(TimeSpan.FromMilliseconds(200))).ResponseAsync.WaitAsync(Wait));
        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5));
        // The handler's token fired at the deadline (its own timer, not only the client's reset).
        var serverSide = await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), With(("x-mode", "sleep"), ("x-id", "deadline-1")).WithTimeout(TimeSpan.FromMilliseconds(200))).ResponseAsync
            .ContinueWith(_ => TestService.StreamCancelledAsync("deadline-1")).Unwrap().WaitAsync(Wait);
        Assert.InRange(double.Parse(serverSide), -50, 5000);
        // An already-expired deadline fails at once.
        var ex2 = await Assert.ThrowsAsync<RpcException>(async () =>
            await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), new CallOptions(Deadline: DateTime.UtcNow.AddSeconds(-1))).ResponseAsync.WaitAsync(Wait));
        Assert.Equal(StatusCode.DeadlineExceeded, ex2.StatusCode);
    }

    [Fact]
    public async Task Cancellation_mid_stream_reaches_the_handler()
    {
        using var cts = new CancellationTokenSource();
        var call = _channel.AsyncServerStreamingCall(AgentFilesMethods.TailFile, new TailFileRequest { Follow = true, Path = "cancel-1" }, new CallOptions(CancellationToken: cts.Token));
        Assert.True(await call.ResponseStream.MoveNext().WaitAsync(Wait));
        Assert.True(await call.ResponseStream.MoveNext().WaitAsync(Wait));
        cts.Cancel();
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await call.ResponseStream.MoveNext().WaitAsync(Wait))
            {
            }
        });
        Assert.Equal(StatusCode.Cancelled, ex.StatusCode);
        Assert.Equal("/sched.v1.AgentFiles/TailFile", await TestService.StreamCancelledAsync("cancel-1").WaitAsync(Wait));
        call.Dispose();

        // Disposing a call also resets the stream.
        var call2 = _channel.AsyncServerStreamingCall(AgentFilesMethods.TailFile, new TailFileRequest { Follow = true, Path = "cancel-2" });
        Assert.True(await call2.ResponseStream.MoveNext().WaitAsync(Wait));
        call2.Dispose();
        await TestService.StreamCancelledAsync("cancel-2").WaitAsync(Wait);
        Assert.Equal(StatusCode.Cancelled, call2.GetStatus().StatusCode);
    }

    [Fact]
    public async Task A_handler_cancelling_its_own_call_ends_its_pending_read_and_chooses_the_status()
    {
        using var call = _channel.AsyncDuplexStreamingCall(AgentLinkMethods.Connect, With(("x-mode", "self-cancel")));
        await call.RequestStream.WriteAsync(new AgentMessage { Heartbeat = new AgentMessage.Types.Heartbeat { Sequence = 1 } });
        // The request stream stays open: only the handler's cancellation can end its read.
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await call.ResponseStream.MoveNext().WaitAsync(Wait))
            {
            }
        });
        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
        Assert.Equal("ended by the handler; its reader was cancelled", ex.Status.Detail);
    }

    [Fact]
    public async Task Max_message_size_is_enforced_both_ways()
    {
        // Under the limit (64 KiB incl. protobuf overhead).
        var ok = await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), With(("x-mode", "big"), ("x-size", "60000")));
        Assert.Equal(60000, ok.Version.Length);
        // Server refuses to send over its limit.
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), With(("x-mode", "big"), ("x-size", "70000"))));
        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        // Client refuses to send a unary request over its limit: nothing is sent.
        using var tooBig = _channel.AsyncUnaryCall(TestService.EchoUnary, new FileChunk { Data = ByteString.CopyFrom(new byte[70_000]) });
        var ex1 = await Assert.ThrowsAsync<RpcException>(() => tooBig.ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, ex1.StatusCode);
        Assert.Equal(StatusCode.ResourceExhausted, tooBig.GetStatus().StatusCode);
        // Client refuses to send over its limit.
        using var call = _channel.AsyncClientStreamingCall(TestService.Collect);
        var big = new FileChunk { Data = ByteString.CopyFrom(new byte[70_000]) };
        var ex2 = await Assert.ThrowsAsync<RpcException>(() => call.RequestStream.WriteAsync(big));
        Assert.Equal(StatusCode.ResourceExhausted, ex2.StatusCode);
        // Server refuses to receive over its limit (client allowed to send more).
        using var loose = RpcChannel.ForAddress("127.0.0.1:" + _server.BoundEndpoints[0].Port, new RpcChannelOptions { MaxSendMessageSize = 1 << 20 });
        using var call3 = loose.AsyncClientStreamingCall(TestService.Collect);
        var ex3 = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await call3.RequestStream.WriteAsync(big);
            await call3.RequestStream.CompleteAsync();
            await call3.ResponseAsync.WaitAsync(Wait);
        });
        Assert.Equal(StatusCode.ResourceExhausted, ex3.StatusCode);
        Assert.Contains("larger than max", ex3.Status.Detail);
    }

    [Fact]
    public async Task Unknown_method_is_UNIMPLEMENTED()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await _channel.AsyncUnaryCall(TestService.Missing, new GetHealthRequest()));
        Assert.Equal(StatusCode.Unimplemented, ex.StatusCode);
        Assert.Contains("/test.Echo/Missing", ex.Status.Detail);
    }

    [Fact]
    public async Task Garbage_message_is_INTERNAL_with_a_message()
    {
        // Field 1 with wire type 7 does not exist in protobuf: no parser accepts it.
        var raw = new Method<BytesMessage, FileChunk>(MethodType.Unary, "sched.v1.Operator", "GetHealth", BytesMessage.Parser, FileChunk.Parser);
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await _channel.AsyncUnaryCall(raw, new BytesMessage(new byte[] { 0x0F, 0xFF, 0xFF })));
        Assert.Equal(StatusCode.Internal, ex.StatusCode);
        Assert.Contains("deserialize", ex.Status.Detail);
    }

    [Fact]
    public async Task Handler_exception_is_UNKNOWN_without_details_and_server_keeps_serving()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), With(("x-mode", "throw"))));
        Assert.Equal(StatusCode.Unknown, ex.StatusCode);
        Assert.DoesNotContain("secret", ex.Status.Detail);
        // The exception is logged server-side, with its detail, instead of leaking to the client.
        Assert.Contains(_logs.Entries, e => e.Level == LogLevel.Error && e.Exception?.Message == "secret internal detail" && e.Message.Contains("GetHealth"));
        var ok = await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest());
        Assert.True(ok.Healthy);
        // Error after messages on a stream: trailers carry it.
        using var call = _channel.AsyncServerStreamingCall(AgentFilesMethods.TailFile, new TailFileRequest { Offset = 3, Path = "fail-after" });
        var n = 0;
        var ex2 = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await call.ResponseStream.MoveNext())
            {
                n++;
            }
        });
        Assert.Equal(3, n);
        Assert.Equal(StatusCode.DataLoss, ex2.StatusCode);
    }

    [Fact]
    public async Task Gzip_requests_are_decompressed()
    {
        using var gz = RpcChannel.ForAddress("127.0.0.1:" + _server.BoundEndpoints[0].Port, new RpcChannelOptions { RequestCompression = "gzip" });
        using var call = gz.AsyncClientStreamingCall(TestService.Collect);
        var text = new string('a', 10_000);
        await call.RequestStream.WriteAsync(new FileChunk { Data = ByteString.CopyFromUtf8(text) });
        await call.RequestStream.WriteAsync(new FileChunk { Data = ByteString.CopyFromUtf8("b") });
        await call.RequestStream.CompleteAsync();
        var r = await call.ResponseAsync.WaitAsync(Wait);
        Assert.Equal(text + "b", r.Data.ToStringUtf8());
    }

    [Fact]
    public async Task Unknown_encoding_is_UNIMPLEMENTED_with_accept_encoding()
    {
        using var http = new HttpClient(new SocketsHttpHandler());
        var body = new ByteArrayContent(new byte[] { 0, 0, 0, 0, 0 });
        body.Headers.TryAddWithoutValidation("content-type", "application/grpc");
        using var req = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{_server.BoundEndpoints[0].Port}/sched.v1.Operator/GetHealth")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = body,
        };
        req.Headers.TryAddWithoutValidation("grpc-encoding", "snappy");
        using var resp = await http.SendAsync(req);
        Assert.Equal("12", resp.Headers.GetValues("grpc-status").Single());
        Assert.Contains("gzip", resp.Headers.GetValues("grpc-accept-encoding").Single());

        using var req2 = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{_server.BoundEndpoints[0].Port}/sched.v1.Operator/GetHealth")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new StringContent("{}", System.Text.Encoding.UTF8, "application/json"),
        };
        using var resp2 = await http.SendAsync(req2);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, resp2.StatusCode);
    }

    [Fact]
    public async Task Tls_with_alpn_h2()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        using var ephemeral = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        using var cert = X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pfx), null);
        await using var server = await TestService.StartAsync(certificate: cert);
        var thumb = cert.GetCertHashString();
        using var channel = RpcChannel.ForAddress("https://127.0.0.1:" + server.BoundEndpoints[0].Port, new RpcChannelOptions
        {
            ServerCertificateValidation = (_, c, _, _) => c is not null && c.GetCertHashString() == thumb,
        });
        var r = await channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest());
        Assert.True(r.Healthy);
        using var call = channel.AsyncDuplexStreamingCall(AgentLinkMethods.Connect);
        await call.RequestStream.WriteAsync(new AgentMessage { Heartbeat = new AgentMessage.Types.Heartbeat { Sequence = 7 } });
        Assert.True(await call.ResponseStream.MoveNext());
        Assert.Equal(7ul, call.ResponseStream.Current.Ping.Sequence);
        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext());

        // An untrusted certificate fails the call with UNAVAILABLE.
        using var strict = RpcChannel.ForAddress("https://127.0.0.1:" + server.BoundEndpoints[0].Port);
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await strict.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest()));
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
    }

    [Fact]
    public async Task Hundred_concurrent_calls_share_one_connection()
    {
        // One call first: until the server's SETTINGS arrive, a client assumes at most 100
        // concurrent streams and may open a second connection for a burst that starts meanwhile.
        var first = (await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest())).Version;
        Assert.StartsWith("ipv4:127.0.0.1:", first);
        var unary = Enumerable.Range(0, 100).Select(async _ => (await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest())).Version);
        var peers = await Task.WhenAll(unary).WaitAsync(Wait);
        Assert.All(peers, p => Assert.Equal(first, p));
        var streams = Enumerable.Range(0, 100).Select(async i =>
        {
            using var call = _channel.AsyncDuplexStreamingCall(AgentLinkMethods.Connect);
            await call.RequestStream.WriteAsync(new AgentMessage { Heartbeat = new AgentMessage.Types.Heartbeat { Sequence = (ulong)i } });
            Assert.True(await call.ResponseStream.MoveNext());
            var seq = call.ResponseStream.Current.Ping.Sequence;
            await call.RequestStream.CompleteAsync();
            Assert.False(await call.ResponseStream.MoveNext());
            return seq;
        });
        var seqs = await Task.WhenAll(streams).WaitAsync(Wait);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => (ulong)i), seqs.OrderBy(s => s));
    }

    [Theory]
    [InlineData(404, "application/grpc", StatusCode.Unimplemented)]
    [InlineData(503, "text/plain", StatusCode.Unavailable)]
    [InlineData(401, "text/plain", StatusCode.Unauthenticated)]
    [InlineData(200, "text/html", StatusCode.Internal)]
    public async Task Http_level_failures_map_to_grpc_codes(int httpStatus, string contentType, StatusCode expected)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
            k.Listen(IPAddress.Loopback, 0, o => o.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2));
        await using var app = builder.Build();
        app.Run(async ctx =>
        {
            ctx.Response.StatusCode = httpStatus;
            ctx.Response.ContentType = contentType;
            await ctx.Response.WriteAsync("not a gRPC answer");
        });
        await app.StartAsync();
        var address = app.Urls.Single();
        using var channel = RpcChannel.ForAddress(address);
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest()).ResponseAsync.WaitAsync(Wait));
        Assert.Equal(expected, ex.StatusCode);
        await app.StopAsync();
    }

    [Fact]
    public async Task Connection_refused_is_UNAVAILABLE()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        using var channel = RpcChannel.ForAddress("127.0.0.1:" + port);
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest()));
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
    }

    [Fact]
    public async Task Stop_cancels_running_calls_and_waits()
    {
        await using var server = await TestService.StartAsync();
        using var channel = RpcChannel.ForAddress("127.0.0.1:" + server.BoundEndpoints[0].Port);
        using var call = channel.AsyncServerStreamingCall(AgentFilesMethods.TailFile, new TailFileRequest { Follow = true, Path = "stop-1" });
        Assert.True(await call.ResponseStream.MoveNext().WaitAsync(Wait));
        await server.StopAsync().WaitAsync(Wait);
        Assert.Equal(0, server.RunningCalls);
        await TestService.StreamCancelledAsync("stop-1").WaitAsync(Wait);
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await call.ResponseStream.MoveNext().WaitAsync(Wait))
            {
            }
        });
        Assert.True(ex.StatusCode is StatusCode.Unavailable or StatusCode.Cancelled, ex.ToString());
    }
}
