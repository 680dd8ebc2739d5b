using Google.Protobuf;
using Grpc.Net.Client;
using Sched.V1;
using Scheduler.Protocol;
using Scheduler.Channels;

namespace Scheduler.Hosting.Tests;

/// <summary>Runs the grpcio client script against our server once; each scenario is a test.</summary>
public sealed class PythonClientFixture : IAsyncLifetime
{
    public Dictionary<string, string> Results { get; } = [];

    public string Output { get; private set; } = "";

    /// <summary>What our handlers saw of the script's calls.</summary>
    public HandlerEvents Events { get; private set; } = new();

    public async Task InitializeAsync()
    {
        if (PythonGrpc.MissingReason is not null)
        {
            return;
        }
        var stubs = await PythonGrpc.StubDirAsync();
        await using var server = await TestServer.StartAsync();
        Events = server.Events;
        var (code, output) = await PythonGrpc.RunAsync(PythonGrpc.Python,
            [Path.Combine(PythonGrpc.InteropDir, "py_client.py"), stubs, PythonGrpc.ProtoRoot, server.Address],
            TimeSpan.FromMinutes(2));
        Output = $"exit {code}\n{output}";
        foreach (var line in output.Split('\n'))
        {
            if (line.StartsWith("ok ", StringComparison.Ordinal))
            {
                Results[line[3..].Trim()] = "ok";
            }
            else if (line.StartsWith("FAIL ", StringComparison.Ordinal))
            {
                var colon = line.IndexOf(':', StringComparison.Ordinal);
                Results[line[5..colon]] = line;
            }
        }
    }

    public Task DisposeAsync() => Task.CompletedTask;
}

/// <summary>A standard gRPC client (Python grpcio) calling our <see cref="GrpcServer"/>.</summary>
public sealed class PythonClientInteropTests(PythonClientFixture fixture) : IClassFixture<PythonClientFixture>
{
    private void Check(string scenario)
    {
        Assert.True(fixture.Results.TryGetValue(scenario, out var result), $"scenario {scenario} did not run:\n{fixture.Output}");
        Assert.True(result == "ok", result + "\n" + fixture.Output);
    }

    [PythonGrpcFact] public void Unary() => Check("unary");

    [PythonGrpcFact] public void Server_streaming() => Check("server_streaming");

    [PythonGrpcFact] public void Client_streaming() => Check("client_streaming");

    [PythonGrpcFact] public void Bidi() => Check("bidi");

    [PythonGrpcFact] public void Deadline_exceeded() => Check("deadline");

    [PythonGrpcFact]
    public async Task Cancellation_mid_stream_reaches_our_handler()
    {
        Check("cancel");
        Assert.Equal("/sched.v1.AgentFiles/TailFile", await fixture.Events.EndedAsync("py-cancel").WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [PythonGrpcFact] public void Error_status_with_non_ascii_message() => Check("error_non_ascii");

    [PythonGrpcFact] public void Metadata_both_ways() => Check("metadata");

    [PythonGrpcFact] public void Size_limits() => Check("size_limits");

    [PythonGrpcFact] public void Hundred_concurrent_calls() => Check("concurrent");

    [PythonGrpcFact] public void Unknown_method() => Check("unimplemented");
}

/// <summary>Our client (a <see cref="GrpcChannels"/> channel) calling a standard gRPC server (Python grpcio).</summary>
public sealed class PythonServerInteropTests : IAsyncLifetime
{
    private const int MiB = 1024 * 1024;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private PythonServer? _server;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        if (PythonGrpc.MissingReason is not null)
        {
            return;
        }
        _server = await PythonServer.StartAsync();
        _channel = GrpcChannels.ForAddress("127.0.0.1:" + _server.Port);
    }

    public async Task DisposeAsync()
    {
        _channel?.Dispose();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    private static CallOptions With(params (string Key, string Value)[] headers)
    {
        var m = new Metadata();
        foreach (var (k, v) in headers)
        {
            m.Add(k, v);
        }
        return new CallOptions(m, DateTime.UtcNow + Wait);
    }

    [PythonGrpcFact]
    public async Task Unary()
    {
        var r = await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), With());
        Assert.True(r.Healthy);
        Assert.Equal("test", r.Role);
    }

    [PythonGrpcFact]
    public async Task Server_streaming()
    {
        using var call = _channel.AsyncServerStreamingCall(AgentFilesMethods.TailFile, new TailFileRequest { Offset = 50 }, With());
        var got = new List<FileChunk>();
        await foreach (var c in call.ResponseStream.ReadAllAsync())
        {
            got.Add(c);
        }
        Assert.Equal(50, got.Count);
        Assert.Equal("chunk-49", got[^1].Data.ToStringUtf8());
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);

        using var failing = _channel.AsyncServerStreamingCall(AgentFilesMethods.TailFile, new TailFileRequest { Offset = 3, Path = "fail-after" }, With());
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var _ in failing.ResponseStream.ReadAllAsync())
            {
            }
        });
        Assert.Equal(StatusCode.DataLoss, ex.StatusCode);
    }

    [PythonGrpcFact]
    public async Task Client_streaming()
    {
        using var call = _channel.AsyncClientStreamingCall(EchoService.CollectMethod, With());
        for (var i = 0; i < 20; i++)
        {
            await call.RequestStream.WriteAsync(new FileChunk { Data = ByteString.CopyFromUtf8(i + ",") });
        }
        await call.RequestStream.CompleteAsync();
        var r = await call.ResponseAsync.WaitAsync(Wait);
        Assert.Equal(20, r.Offset);
        Assert.Equal(string.Concat(Enumerable.Range(0, 20).Select(i => i + ",")), r.Data.ToStringUtf8());
    }

    [PythonGrpcFact]
    public async Task Bidi()
    {
        using var call = _channel.AsyncDuplexStreamingCall(AgentLinkMethods.Connect, With());
        for (ulong i = 1; i <= 10; i++)
        {
            await call.RequestStream.WriteAsync(new AgentMessage { Heartbeat = new AgentMessage.Types.Heartbeat { Sequence = i } });
            Assert.True(await call.ResponseStream.MoveNext().WaitAsync(Wait));
            Assert.Equal(i, call.ResponseStream.Current.Ping.Sequence);
        }
        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext().WaitAsync(Wait));
        Assert.Equal("done", call.GetTrailers().GetValue("x-end"));
        // Our client keeps a trailer with an empty value (it is our server that drops them).
        Assert.Equal("", call.GetTrailers().GetValue("x-end-empty"));
    }

    [PythonGrpcFact]
    public async Task Deadline_exceeded_and_propagated()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), new CallOptions(new Metadata { { "x-mode", "sleep" } }, DateTime.UtcNow.AddMilliseconds(300))).ResponseAsync.WaitAsync(Wait));
        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        var r = await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), new CallOptions(new Metadata { { "x-mode", "deadline" } }, DateTime.UtcNow.AddSeconds(30)));
        Assert.InRange(int.Parse(r.Role, System.Globalization.CultureInfo.InvariantCulture), 25_000, 30_000);
    }

    [PythonGrpcFact]
    public async Task Cancellation_mid_stream_reaches_the_python_handler()
    {
        await StreamScenarios.CancelMidStreamAsync(_channel, "dotnet-cancel", Wait);
        await _server!.CancelledAsync("dotnet-cancel").WaitAsync(Wait);
    }

    [PythonGrpcFact]
    public async Task Error_status_with_non_ascii_message()
    {
        const string text = "Überlast: 100% voll — réessayez ✓";
        var headers = new Metadata { { "x-mode", "fail" }, { "x-detail-bin", System.Text.Encoding.UTF8.GetBytes(text) } };
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), new CallOptions(headers)));
        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
        Assert.Equal(text, ex.Status.Detail);
        Assert.Equal("requested", ex.Trailers.GetValue("x-reason"));
    }

    [PythonGrpcFact]
    public async Task Metadata_both_ways()
    {
        var blob = new byte[] { 0, 1, 2, 250, 255 };
        var headers = new Metadata { { "x-echo", "hello" }, { "x-echo-bin", blob } };
        using var call = _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), new CallOptions(headers));
        var responseHeaders = await call.ResponseHeadersAsync.WaitAsync(Wait);
        await call.ResponseAsync.WaitAsync(Wait);
        Assert.Equal("hello", responseHeaders.GetValue("x-echo"));
        Assert.Equal("hello", call.GetTrailers().GetValue("x-echo-trailer"));
        Assert.Equal(blob, call.GetTrailers().Get("x-echo-bin")!.ValueBytes);
    }

    [PythonGrpcFact]
    public async Task Size_limits()
    {
        var near = 4 * MiB - 64;
        var r = await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), With(("x-mode", "big"), ("x-size", near.ToString())));
        Assert.Equal(near, r.Version.Length);
        // Over our client's receive limit: refused before allocating.
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), With(("x-mode", "big"), ("x-size", (4 * MiB + 10).ToString()))));
        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        // Over the Python server's receive limit (4 MiB): its status comes back.
        using var loose = GrpcChannels.ForAddress("127.0.0.1:" + _server!.Port, new GrpcChannelSettings { MaxSendMessageSize = 8 * MiB, MaxReceiveMessageSize = 8 * MiB });
        using var call = loose.AsyncClientStreamingCall(EchoService.CollectMethod, With());
        var ex2 = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await call.RequestStream.WriteAsync(new FileChunk { Data = ByteString.CopyFrom(new byte[4 * MiB + 1]) });
            await call.RequestStream.CompleteAsync();
            await call.ResponseAsync.WaitAsync(Wait);
        });
        Assert.Equal(StatusCode.ResourceExhausted, ex2.StatusCode);
        using var ok = loose.AsyncClientStreamingCall(EchoService.CollectMethod, With());
        await ok.RequestStream.WriteAsync(new FileChunk { Data = ByteString.CopyFrom(new byte[4 * MiB - 64]) });
        await ok.RequestStream.CompleteAsync();
        Assert.Equal(4 * MiB - 64, (await ok.ResponseAsync.WaitAsync(Wait)).Data.Length);
    }

    [PythonGrpcFact]
    public async Task Hundred_concurrent_calls()
    {
        var unary = Enumerable.Range(0, 100).Select(async _ => await _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), With()));
        var results = await Task.WhenAll(unary).WaitAsync(Wait);
        Assert.All(results, r => Assert.True(r.Healthy));
        var streams = Enumerable.Range(0, 100).Select(async i =>
        {
            using var call = _channel.AsyncDuplexStreamingCall(AgentLinkMethods.Connect, With());
            await call.RequestStream.WriteAsync(new AgentMessage { Heartbeat = new AgentMessage.Types.Heartbeat { Sequence = (ulong)i } });
            await call.RequestStream.CompleteAsync();
            Assert.True(await call.ResponseStream.MoveNext());
            var seq = call.ResponseStream.Current.Ping.Sequence;
            Assert.False(await call.ResponseStream.MoveNext());
            return seq;
        });
        var seqs = await Task.WhenAll(streams).WaitAsync(Wait);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => (ulong)i), seqs.OrderBy(s => s));
    }

    [PythonGrpcFact]
    public async Task Unknown_method_is_UNIMPLEMENTED()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await _channel.AsyncUnaryCall(EchoService.MissingMethod, new GetHealthRequest(), With()));
        Assert.Equal(StatusCode.Unimplemented, ex.StatusCode);
    }
}
