using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Sched.V1;
using Scheduler.Protocol;
using Scheduler.Channels;

namespace Scheduler.Hosting.Tests;

/// <summary>Metadata, statuses, deadlines, cancellation, message limits, compression, TLS,
/// concurrency and stopping, between our client (<see cref="GrpcChannels"/>) and our server
/// (<see cref="GrpcServer"/>) over loopback.</summary>
public sealed class CallBehaviourTests : IAsyncLifetime
{
    private const int Limit = 64 * 1024;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private readonly CapturingLoggerProvider _logs = new();
    private ILoggerFactory _loggerFactory = null!;
    private TestServer _server = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        _loggerFactory = LoggerFactory.Create(b => b.AddProvider(_logs).SetMinimumLevel(LogLevel.Debug));
        _server = await TestServer.StartAsync(new GrpcServerOptions { MaxReceiveMessageSize = Limit, MaxSendMessageSize = Limit, LoggerFactory = _loggerFactory });
        _channel = _server.Channel(new GrpcChannelSettings { MaxReceiveMessageSize = Limit, MaxSendMessageSize = Limit });
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _server.DisposeAsync();
        _loggerFactory.Dispose();
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

    private Task<GetHealthResponse> HealthAsync(CallOptions options = default, GrpcChannel? channel = null)
        => (channel ?? _channel).AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), options).ResponseAsync.WaitAsync(Wait);

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
    public async Task Metadata_with_an_empty_value_does_not_reach_the_client()
    {
        // Grpc.AspNetCore writes metadata with IHeaderDictionary.Append, which drops an empty value:
        // in the trailers of a refusal (x-empty, beside x-reason) ...
        var refused = await Assert.ThrowsAsync<RpcException>(() => HealthAsync(With(("x-mode", "fail"))));
        Assert.Equal("requested", refused.Trailers.GetValue("x-reason"));
        Assert.Null(refused.Trailers.Get("x-empty"));
        // ... and in the trailers after messages (x-end-empty, beside x-end). A key that clients
        // tell apart by its presence (sched-leader "" = not the leader, leader unknown) needs a
        // value that is not empty.
        using var call = _channel.AsyncDuplexStreamingCall(AgentLinkMethods.Connect);
        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext().WaitAsync(Wait));
        Assert.Equal("done", call.GetTrailers().GetValue("x-end"));
        Assert.Null(call.GetTrailers().Get("x-end-empty"));
    }

    [Fact]
    public async Task RpcException_becomes_its_status_with_trailers_and_a_non_ascii_message()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() => HealthAsync(With(("x-mode", "fail"), ("x-detail", "no quota left"))));
        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
        Assert.Equal("no quota left", ex.Status.Detail);
        Assert.Equal("requested", ex.Trailers.GetValue("x-reason"));

        // Non-ASCII text cannot travel in an ASCII header, so the handler takes it from a -bin key.
        const string detail = "Überlast: 100% voll — réessayez plus tard ✓";
        var headers = new Metadata { { "x-mode", "fail" }, { "x-detail-bin", System.Text.Encoding.UTF8.GetBytes(detail) } };
        var ex2 = await Assert.ThrowsAsync<RpcException>(() => HealthAsync(new CallOptions(headers)));
        Assert.Equal(StatusCode.FailedPrecondition, ex2.StatusCode);
        Assert.Equal(detail, ex2.Status.Detail);

        // After messages on a stream, the status and detail come in the trailers.
        using var call = _channel.AsyncServerStreamingCall(AgentFilesMethods.TailFile, new TailFileRequest { Offset = 3, Path = "fail-after" });
        var n = 0;
        var ex3 = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await call.ResponseStream.MoveNext().WaitAsync(Wait))
            {
                n++;
            }
        });
        Assert.Equal(3, n);
        Assert.Equal(StatusCode.DataLoss, ex3.StatusCode);
        Assert.Equal("stream broke after the messages", ex3.Status.Detail);
    }

    [Fact]
    public async Task Handler_exception_is_UNKNOWN_without_its_message_and_the_server_keeps_serving()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() => HealthAsync(With(("x-mode", "throw"))));
        Assert.Equal(StatusCode.Unknown, ex.StatusCode);
        Assert.DoesNotContain("secret", ex.Status.Detail, StringComparison.Ordinal);
        // The exception is logged on the server, once, with its message, instead of leaking to the client.
        var logged = _logs.Entries.Where(e => e.Exception?.Message == TestOperator.SecretDetail).ToList();
        var entry = Assert.Single(logged);
        Assert.Equal(LogLevel.Error, entry.Level);
        Assert.Contains("/sched.v1.Operator/GetHealth", entry.Message, StringComparison.Ordinal);
        Assert.True((await HealthAsync()).Healthy);
    }

    [Fact]
    public async Task Deadline_is_sent_and_surfaced_to_the_handler()
    {
        var response = await HealthAsync(With(("x-mode", "deadline")).WithDeadline(DateTime.UtcNow.AddSeconds(30)));
        Assert.InRange(double.Parse(response.Role, System.Globalization.CultureInfo.InvariantCulture), 25_000, 30_000);
        var none = await HealthAsync(With(("x-mode", "deadline")));
        Assert.Equal("none", none.Role);
    }

    [Fact]
    public async Task Deadline_exceeded_ends_the_call_with_DEADLINE_EXCEEDED_and_cancels_the_handler()
    {
        var started = DateTime.UtcNow;
        var ex = await Assert.ThrowsAsync<RpcException>(() => HealthAsync(With(("x-mode", "sleep"), ("x-id", "deadline-1")).WithDeadline(DateTime.UtcNow.AddMilliseconds(200))));
        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5));
        // The handler's token fired at about the deadline the server saw: by the server's own timer,
        // or a little before it by the client's reset at the client's deadline (the server's
        // deadline starts when the request arrives, so it is later by the request's transit time).
        var late = double.Parse(await _server.Events.EndedAsync("deadline-1").WaitAsync(Wait), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(late, -1000, 5000);
        // An already-expired deadline fails at once.
        var ex2 = await Assert.ThrowsAsync<RpcException>(() => HealthAsync(new CallOptions(deadline: DateTime.UtcNow.AddSeconds(-1))));
        Assert.Equal(StatusCode.DeadlineExceeded, ex2.StatusCode);
    }

    [Fact]
    public async Task Cancellation_mid_stream_reaches_the_handler()
    {
        await StreamScenarios.CancelMidStreamAsync(_channel, "cancel-1", Wait);
        Assert.Equal("/sched.v1.AgentFiles/TailFile", await _server.Events.EndedAsync("cancel-1").WaitAsync(Wait));

        // Disposing a call cancels it too.
        var call2 = _channel.AsyncServerStreamingCall(AgentFilesMethods.TailFile, new TailFileRequest { Follow = true, Path = "cancel-2" });
        Assert.True(await call2.ResponseStream.MoveNext().WaitAsync(Wait));
        call2.Dispose();
        Assert.Equal("/sched.v1.AgentFiles/TailFile", await _server.Events.EndedAsync("cancel-2").WaitAsync(Wait));
        Assert.Equal(StatusCode.Cancelled, call2.GetStatus().StatusCode);
        await Poll.UntilAsync(() => _server.RunningCalls == 0, Wait, () => "both handlers to end; running: " + _server.RunningCalls);
    }

    [Fact]
    public async Task Message_size_limits_hold_both_ways_with_RESOURCE_EXHAUSTED()
    {
        // Under the limit (64 KiB including protobuf overhead).
        Assert.Equal(60_000, (await HealthAsync(With(("x-mode", "big"), ("x-size", "60000")))).Version.Length);
        // The server refuses to send over its limit.
        var ex = await Assert.ThrowsAsync<RpcException>(() => HealthAsync(With(("x-mode", "big"), ("x-size", "70000"))));
        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        // The client refuses to receive over its limit (the server may send up to 1 MiB here).
        await using (var generous = await TestServer.StartAsync(new GrpcServerOptions { MaxSendMessageSize = 1 << 20 }))
        {
            using var strict = generous.Channel(new GrpcChannelSettings { MaxReceiveMessageSize = Limit });
            var exReceive = await Assert.ThrowsAsync<RpcException>(() => HealthAsync(With(("x-mode", "big"), ("x-size", "70000")), strict));
            Assert.Equal(StatusCode.ResourceExhausted, exReceive.StatusCode);
            Assert.Contains("Received message exceeds the maximum", exReceive.Status.Detail, StringComparison.Ordinal);
        }
        // The client refuses to send a request over its limit: nothing is sent.
        using var tooBig = _channel.AsyncUnaryCall(EchoService.EchoMethod, new FileChunk { Data = ByteString.CopyFrom(new byte[70_000]) });
        var exSend = await Assert.ThrowsAsync<RpcException>(() => tooBig.ResponseAsync.WaitAsync(Wait));
        Assert.Equal(StatusCode.ResourceExhausted, exSend.StatusCode);
        Assert.Contains("Sending message exceeds the maximum", exSend.Status.Detail, StringComparison.Ordinal);
        using var stream = _channel.AsyncClientStreamingCall(EchoService.CollectMethod);
        var exStream = await Assert.ThrowsAsync<RpcException>(() => stream.RequestStream.WriteAsync(new FileChunk { Data = ByteString.CopyFrom(new byte[70_000]) }));
        Assert.Equal(StatusCode.ResourceExhausted, exStream.StatusCode);
        // The server refuses to receive over its limit from a client allowed to send more.
        using var loose = _server.Channel(new GrpcChannelSettings { MaxSendMessageSize = 1 << 20 });
        using var call = loose.AsyncClientStreamingCall(EchoService.CollectMethod);
        var exServer = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await call.RequestStream.WriteAsync(new FileChunk { Data = ByteString.CopyFrom(new byte[70_000]) });
            await call.RequestStream.CompleteAsync();
            await call.ResponseAsync.WaitAsync(Wait);
        });
        Assert.Equal(StatusCode.ResourceExhausted, exServer.StatusCode);
        Assert.Contains("Received message exceeds the maximum", exServer.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_method_is_UNIMPLEMENTED()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() => _channel.AsyncUnaryCall(EchoService.MissingMethod, new GetHealthRequest()).ResponseAsync.WaitAsync(Wait));
        Assert.Equal(StatusCode.Unimplemented, ex.StatusCode);
        var unknownService = new Method<GetHealthRequest, GetHealthResponse>(MethodType.Unary, "no.Such", "Method", GrpcMethod.Marshaller<GetHealthRequest>(), GrpcMethod.Marshaller<GetHealthResponse>());
        var ex2 = await Assert.ThrowsAsync<RpcException>(() => _channel.AsyncUnaryCall(unknownService, new GetHealthRequest()).ResponseAsync.WaitAsync(Wait));
        Assert.Equal(StatusCode.Unimplemented, ex2.StatusCode);
    }

    [Fact]
    public async Task Unparseable_request_is_INVALID_ARGUMENT_naming_the_type_and_the_server_keeps_serving()
    {
        // Field 1 with wire type 7 does not exist in protobuf: no parser accepts it. The caller is
        // told which message was expected and the parser's reason (Grpc.AspNetCore alone would say
        // UNKNOWN "Exception was thrown by handler.").
        var raw = new Method<byte[], GetHealthResponse>(MethodType.Unary, "sched.v1.Operator", "GetHealth", Marshallers.Create<byte[]>(b => b, b => b), GrpcMethod.Marshaller<GetHealthResponse>());
        var ex = await Assert.ThrowsAsync<RpcException>(() => _channel.AsyncUnaryCall(raw, new byte[] { 0x0F, 0xFF, 0xFF }).ResponseAsync.WaitAsync(Wait));
        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.StartsWith("cannot parse sched.v1.GetHealthRequest: ", ex.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("wire type", ex.Status.Detail, StringComparison.Ordinal);
        Assert.True((await HealthAsync()).Healthy);
    }

    [Fact]
    public async Task Gzip_compressed_requests_are_accepted()
    {
        using var call = _channel.AsyncClientStreamingCall(EchoService.CollectMethod, With(("grpc-internal-encoding-request", "gzip")));
        var text = new string('a', 10_000);
        await call.RequestStream.WriteAsync(new FileChunk { Data = ByteString.CopyFromUtf8(text) });
        await call.RequestStream.WriteAsync(new FileChunk { Data = ByteString.CopyFromUtf8("b") });
        await call.RequestStream.CompleteAsync();
        var r = await call.ResponseAsync.WaitAsync(Wait);
        Assert.Equal(text + "b", r.Data.ToStringUtf8());
        Assert.Equal("gzip", call.GetTrailers().GetValue("x-grpc-encoding"));
    }

    [Fact]
    public async Task Unsupported_encoding_is_UNIMPLEMENTED_and_a_non_grpc_content_type_415()
    {
        using var http = new HttpClient(new SocketsHttpHandler());
        var body = new ByteArrayContent(RawHttp2Connection.GrpcMessage([1, 2, 3], flag: 1));
        body.Headers.TryAddWithoutValidation("content-type", "application/grpc");
        using var req = new HttpRequestMessage(HttpMethod.Post, $"http://{_server.Address}/sched.v1.Operator/GetHealth")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = body,
        };
        req.Headers.TryAddWithoutValidation("grpc-encoding", "snappy");
        using var resp = await http.SendAsync(req);
        Assert.Equal("12", resp.Headers.GetValues("grpc-status").Single());
        Assert.Contains("gzip", resp.Headers.GetValues("grpc-message").Single(), StringComparison.Ordinal);

        using var req2 = new HttpRequestMessage(HttpMethod.Post, $"http://{_server.Address}/sched.v1.Operator/GetHealth")
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
        await using var server = await TestServer.StartAsync(certificate: cert);
        var thumb = cert.GetCertHashString();
        using var channel = GrpcChannels.ForAddress("https://" + server.Address, new GrpcChannelSettings
        {
            ServerCertificateValidation = (_, c, _, _) => c is not null && c.GetCertHashString() == thumb,
        });
        Assert.True((await HealthAsync(channel: channel)).Healthy);
        using var call = channel.AsyncDuplexStreamingCall(AgentLinkMethods.Connect);
        await call.RequestStream.WriteAsync(new AgentMessage { Heartbeat = new AgentMessage.Types.Heartbeat { Sequence = 7 } });
        Assert.True(await call.ResponseStream.MoveNext().WaitAsync(Wait));
        Assert.Equal(7ul, call.ResponseStream.Current.Ping.Sequence);
        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext().WaitAsync(Wait));

        // An untrusted certificate fails the call; Grpc.Net.Client reports a failed TLS handshake as INTERNAL.
        using var strict = GrpcChannels.ForAddress("https://" + server.Address);
        var ex = await Assert.ThrowsAsync<RpcException>(() => HealthAsync(channel: strict));
        Assert.Equal(StatusCode.Internal, ex.StatusCode);
        Assert.Contains("The SSL connection could not be established", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Hundred_concurrent_calls_share_one_connection()
    {
        // One call first: until the server's SETTINGS arrive, a client assumes at most 100
        // concurrent streams and may open a second connection for a burst that starts meanwhile.
        var first = (await HealthAsync()).Version;
        Assert.StartsWith("ipv4:127.0.0.1:", first);
        var peers = await Task.WhenAll(Enumerable.Range(0, 100).Select(async _ => (await HealthAsync()).Version));
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
        Assert.Equal(Enumerable.Range(0, 100).Select(i => (ulong)i), seqs.Order());
    }

    [Theory]
    [InlineData(404, "application/grpc", StatusCode.Unimplemented)]
    [InlineData(503, "text/plain", StatusCode.Unavailable)]
    [InlineData(401, "text/plain", StatusCode.Unauthenticated)]
    [InlineData(200, "text/html", StatusCode.Cancelled)]
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
        using var channel = GrpcChannels.ForAddress(app.Urls.Single());
        var ex = await Assert.ThrowsAsync<RpcException>(() => HealthAsync(channel: channel));
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
        using var channel = GrpcChannels.ForAddress("127.0.0.1:" + port);
        var ex = await Assert.ThrowsAsync<RpcException>(() => HealthAsync(channel: channel));
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
    }

    [Fact]
    public async Task Stop_ends_a_stream_that_watches_Stopping_at_once_with_UNAVAILABLE()
    {
        await using var server = await TestServer.StartAsync(new GrpcServerOptions { StopTimeout = TimeSpan.FromSeconds(30) });
        using var channel = server.Channel();
        using var call = channel.AsyncServerStreamingCall(AgentFilesMethods.TailFile, new TailFileRequest { Follow = true, Path = "stop-1" });
        Assert.True(await call.ResponseStream.MoveNext().WaitAsync(Wait));
        var stopping = System.Diagnostics.Stopwatch.StartNew();
        await server.StopAsync().WaitAsync(Wait);
        // Well before the 30 s stop timeout: the handler ended on Stopping, the stop did not wait it out.
        Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(5), $"stop took {stopping.Elapsed}");
        Assert.Equal("stopping", await server.Events.EndedAsync("stop-1").WaitAsync(Wait));
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await call.ResponseStream.MoveNext().WaitAsync(Wait))
            {
            }
        });
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Equal("the test server is stopping", ex.Status.Detail);
        Assert.Equal(0, server.RunningCalls);
    }

    [Fact]
    public async Task Stop_aborts_a_stream_that_ignores_Stopping_after_the_stop_timeout()
    {
        await using var server = await TestServer.StartAsync(new GrpcServerOptions { StopTimeout = TimeSpan.FromSeconds(1) });
        using var channel = server.Channel();
        using var call = channel.AsyncServerStreamingCall(AgentFilesMethods.TailFile, new TailFileRequest { Follow = true, Path = "ignore-stop" });
        Assert.True(await call.ResponseStream.MoveNext().WaitAsync(Wait));
        var stopping = System.Diagnostics.Stopwatch.StartNew();
        await server.StopAsync().WaitAsync(Wait);
        Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(5), $"stop took {stopping.Elapsed} with a 1 s stop timeout");
        // The abort reached the handler as its call's cancellation.
        Assert.Equal("/sched.v1.AgentFiles/TailFile", await server.Events.EndedAsync("ignore-stop").WaitAsync(Wait));
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await call.ResponseStream.MoveNext().WaitAsync(Wait))
            {
            }
        });
        Assert.True(ex.StatusCode is StatusCode.Unavailable or StatusCode.Cancelled or StatusCode.Internal, ex.ToString());
        await Poll.UntilAsync(() => server.RunningCalls == 0, Wait, () => "the aborted handler to end; running: " + server.RunningCalls);
    }
}
