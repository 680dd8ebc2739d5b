using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Google.Protobuf;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using Sched.V1;
using Scheduler.Protocol;
using Scheduler.Channels;

namespace Scheduler.Hosting.Tests;

/// <summary><see cref="CallLoggingInterceptor"/> (on every <see cref="GrpcServer"/>),
/// <see cref="CallMetricsInterceptor"/>, and the order of configured interceptors.</summary>
public sealed class InterceptorTests : IAsyncLifetime
{
    private const string CallsCategory = "Scheduler.Hosting.Calls";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private readonly CapturingLoggerProvider _logs = new();
    private readonly Meter _meter = new("Scheduler.Hosting.Tests." + Guid.NewGuid().ToString("N"));
    private readonly ConcurrentQueue<(string Instrument, string Method, string Code, double Seconds)> _measurements = new();
    private readonly MeterListener _listener = new();
    private readonly List<string> _order = [];
    private ILoggerFactory _loggerFactory = null!;
    private TestServer _server = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter == _meter)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            var all = tags.ToArray();
            string Tag(string key) => all.FirstOrDefault(t => t.Key == key).Value?.ToString() ?? "(none)";
            _measurements.Enqueue((instrument.Name, Tag("method"), Tag("code"), value));
        });
        _listener.Start();
        _loggerFactory = LoggerFactory.Create(b => b.AddProvider(_logs).SetMinimumLevel(LogLevel.Debug));
        var options = new GrpcServerOptions { LoggerFactory = _loggerFactory };
        options.Interceptors.Add(new CallMetricsInterceptor(_meter, "test"));
        options.Interceptors.Add(new OrderProbe(_order, "first"));
        options.Interceptors.Add(new OrderProbe(_order, "second")); // two of one type are two interceptors
        _server = await TestServer.StartAsync(options);
        _channel = _server.Channel();
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _server.DisposeAsync();
        _loggerFactory.Dispose();
        _listener.Dispose();
        _meter.Dispose();
    }

    private List<CapturingLoggerProvider.Entry> CallLogs() => _logs.Entries.Where(e => e.Category == CallsCategory).ToList();

    private Task<GetHealthResponse> HealthAsync(string mode)
        => _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), new CallOptions(new Metadata { { "x-mode", mode } })).ResponseAsync.WaitAsync(Wait);

    [Fact]
    public async Task Logging_logs_a_refusal_at_debug_with_method_status_and_detail()
    {
        await Assert.ThrowsAsync<RpcException>(() => _channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(),
            new CallOptions(new Metadata { { "x-mode", "fail" }, { "x-detail", "no quota left" } })).ResponseAsync.WaitAsync(Wait));
        var entry = Assert.Single(CallLogs());
        Assert.Equal(LogLevel.Debug, entry.Level);
        Assert.Equal("Call /sched.v1.Operator/GetHealth ended with FailedPrecondition: no quota left", entry.Message);
        Assert.Null(entry.Exception);
    }

    [Fact]
    public async Task Logging_logs_a_handler_exception_at_error_with_the_exception()
    {
        await Assert.ThrowsAsync<RpcException>(() => HealthAsync("throw"));
        var entry = Assert.Single(CallLogs());
        Assert.Equal(LogLevel.Error, entry.Level);
        Assert.Contains("/sched.v1.Operator/GetHealth", entry.Message, StringComparison.Ordinal);
        Assert.IsType<InvalidOperationException>(entry.Exception);
        Assert.Equal(TestOperator.SecretDetail, entry.Exception!.Message);
    }

    [Fact]
    public async Task Logging_does_not_log_successful_calls_nor_calls_the_client_cancelled()
    {
        Assert.True((await HealthAsync("echo")).Healthy);
        using (var tail = _channel.AsyncServerStreamingCall(AgentFilesMethods.TailFile, new TailFileRequest { Offset = 3 }))
        {
            await foreach (var _ in tail.ResponseStream.ReadAllAsync().WithCancellation(new CancellationTokenSource(Wait).Token))
            {
            }
        }
        using (var link = _channel.AsyncDuplexStreamingCall(AgentLinkMethods.Connect))
        {
            await link.RequestStream.CompleteAsync();
            Assert.False(await link.ResponseStream.MoveNext().WaitAsync(Wait));
        }
        using var cts = new CancellationTokenSource();
        using (var follow = _channel.AsyncServerStreamingCall(AgentFilesMethods.TailFile, new TailFileRequest { Follow = true, Path = "log-cancel" }, new CallOptions(cancellationToken: cts.Token)))
        {
            Assert.True(await follow.ResponseStream.MoveNext().WaitAsync(Wait));
            await cts.CancelAsync();
            await _server.Events.EndedAsync("log-cancel").WaitAsync(Wait);
        }
        await Poll.UntilAsync(() => _server.RunningCalls == 0, Wait, () => "every handler to end; running: " + _server.RunningCalls);
        Assert.Empty(CallLogs());
    }

    [Fact]
    public async Task Metrics_record_each_call_with_its_method_and_status_code()
    {
        Assert.True((await HealthAsync("echo")).Healthy);
        await Assert.ThrowsAsync<RpcException>(() => HealthAsync("fail"));
        await Assert.ThrowsAsync<RpcException>(() => HealthAsync("throw"));
        // A deadline only the server enforces: a client's own deadline timer would reset the stream
        // at about the same moment, and a reset that arrives first is recorded as Cancelled.
        await using (var raw = await RawHttp2Connection.ConnectAsync(_server.EndPoint))
        {
            var sleep = await raw.OpenAsync("/sched.v1.Operator/GetHealth", extra: [("x-mode", "sleep"), ("grpc-timeout", "100m")]);
            await raw.SendDataAsync(sleep, RawHttp2Connection.GrpcMessage([]), endStream: true);
            await sleep.Ended.WaitAsync(Wait);
            Assert.True(sleep.GrpcStatus == (int)StatusCode.DeadlineExceeded, sleep.Outcome);
        }
        using (var collect = _channel.AsyncClientStreamingCall(EchoService.CollectMethod))
        {
            await collect.RequestStream.WriteAsync(new FileChunk { Data = ByteString.CopyFromUtf8("x") });
            await collect.RequestStream.CompleteAsync();
            await collect.ResponseAsync.WaitAsync(Wait);
        }
        using var cts = new CancellationTokenSource();
        using (var follow = _channel.AsyncServerStreamingCall(AgentFilesMethods.TailFile, new TailFileRequest { Follow = true, Path = "metrics-cancel" }, new CallOptions(cancellationToken: cts.Token)))
        {
            Assert.True(await follow.ResponseStream.MoveNext().WaitAsync(Wait));
            await cts.CancelAsync();
        }
        // An unknown method reaches no handler, so no interceptor: it is not recorded.
        await Assert.ThrowsAsync<RpcException>(() => _channel.AsyncUnaryCall(EchoService.MissingMethod, new GetHealthRequest()).ResponseAsync.WaitAsync(Wait));

        (string, string)[] expected =
        [
            ("/sched.v1.Operator/GetHealth", "OK"),
            ("/sched.v1.Operator/GetHealth", "FailedPrecondition"),
            ("/sched.v1.Operator/GetHealth", "Unknown"),
            ("/sched.v1.Operator/GetHealth", "DeadlineExceeded"),
            ("/test.Echo/Collect", "OK"),
            ("/sched.v1.AgentFiles/TailFile", "Cancelled"),
        ];
        string Seen() => string.Join(", ", _measurements.Select(m => $"{m.Method} {m.Code}"));
        await Poll.UntilAsync(() => _measurements.Count >= expected.Length, Wait, () => "every call to be recorded; seen: " + Seen());
        await Poll.UntilAsync(() => _server.RunningCalls == 0, Wait, () => "every handler to end");
        Assert.Equal(expected.Order(), _measurements.Select(m => (m.Method, m.Code)).Order());
        Assert.All(_measurements, m => Assert.Equal("test.rpc.server.duration", m.Instrument));
        Assert.All(_measurements, m => Assert.InRange(m.Seconds, 0, 60));
        // The deadline call lasted until its deadline.
        Assert.True(_measurements.Single(m => m.Code == "DeadlineExceeded").Seconds >= 0.05, Seen());
    }

    [Fact]
    public async Task Configured_interceptors_run_around_every_call_in_their_order()
    {
        Assert.True((await HealthAsync("echo")).Healthy);
        using (var link = _channel.AsyncDuplexStreamingCall(AgentLinkMethods.Connect))
        {
            await link.RequestStream.CompleteAsync();
            Assert.False(await link.ResponseStream.MoveNext().WaitAsync(Wait));
        }
        await Poll.UntilAsync(() => _server.RunningCalls == 0, Wait, () => "every handler to end");
        lock (_order)
        {
            Assert.Equal(
                ["first in /sched.v1.Operator/GetHealth", "second in /sched.v1.Operator/GetHealth", "second out", "first out",
                 "first in /sched.v1.AgentLink/Connect", "second in /sched.v1.AgentLink/Connect", "second out", "first out"],
                _order);
        }
    }

    /// <summary>Records entering and leaving each call.</summary>
    private sealed class OrderProbe(List<string> order, string name) : ServerCallInterceptor
    {
        protected override async Task<T> AroundAsync<T>(ServerCallContext context, Func<Task<T>> call)
        {
            Add($"{name} in {context.Method}");
            try
            {
                return await call();
            }
            finally
            {
                Add($"{name} out");
            }
        }

        private void Add(string what)
        {
            lock (order)
            {
                order.Add(what);
            }
        }
    }

}
