using System.Net;
using System.Security.Cryptography.X509Certificates;
using Grpc.Net.Client;
using Scheduler.Protocol;
using Scheduler.Channels;

namespace Scheduler.Hosting.Tests;

/// <summary>
/// A <see cref="GrpcServer"/> on a free loopback port serving the test services (Operator,
/// AgentFiles, AgentLink on their generated bases; the hand-written test.Echo), with what their
/// handlers observed and a count of the calls running in a handler.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    private readonly RunningCallsInterceptor _running;

    private TestServer(GrpcServer server, HandlerEvents events, RunningCallsInterceptor running)
    {
        Server = server;
        Events = events;
        _running = running;
    }

    public GrpcServer Server { get; }

    public HandlerEvents Events { get; }

    /// <summary>Calls whose handler has started and not yet ended.</summary>
    public int RunningCalls => _running.Running;

    public IPEndPoint EndPoint => Server.BoundEndpoints[0];

    /// <summary><c>127.0.0.1:PORT</c>.</summary>
    public string Address => "127.0.0.1:" + EndPoint.Port;

    /// <summary>Starts the server with <paramref name="options"/> (a loopback endpoint is added when
    /// it has none; <paramref name="certificate"/> makes it TLS); <paramref name="extra"/> adds services.</summary>
    public static async Task<TestServer> StartAsync(GrpcServerOptions? options = null, X509Certificate2? certificate = null, Action<GrpcServices>? extra = null)
    {
        options ??= new GrpcServerOptions();
        if (options.Endpoints.Count == 0)
        {
            options.Endpoints.Add(new GrpcEndpoint(new IPEndPoint(IPAddress.Loopback, 0), certificate));
        }
        var running = new RunningCallsInterceptor();
        options.Interceptors.Add(running);
        var events = new HandlerEvents();
        var files = new TestFiles(events);
        var services = new GrpcServices()
            .Add(new TestOperator(events))
            .Add(files)
            .Add(new TestLink())
            .Add(new EchoService());
        extra?.Invoke(services);
        var server = await GrpcServer.StartAsync(options, services);
        files.Stopping = server.Stopping;
        return new TestServer(server, events, running);
    }

    /// <summary>A channel to this server with the project's client settings.</summary>
    public GrpcChannel Channel(GrpcChannelSettings? settings = null) => GrpcChannels.ForAddress(Address, settings);

    public Task StopAsync() => Server.StopAsync();

    public ValueTask DisposeAsync() => Server.DisposeAsync();

    /// <summary>Counts the calls inside a handler (the innermost interceptor).</summary>
    private sealed class RunningCallsInterceptor : ServerCallInterceptor
    {
        private int _running;

        public int Running => Volatile.Read(ref _running);

        protected override async Task<T> AroundAsync<T>(ServerCallContext context, Func<Task<T>> call)
        {
            Interlocked.Increment(ref _running);
            try
            {
                return await call();
            }
            finally
            {
                Interlocked.Decrement(ref _running);
            }
        }
    }
}

/// <summary>Client-streaming calls by typed method (<see cref="ChannelCalls"/> has the other three kinds).</summary>
public static class ClientStreamingCalls
{
    public static AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(this ChannelBase channel, Method<TRequest, TResponse> method, CallOptions options = default)
        where TRequest : class
        where TResponse : class
        => channel.CreateCallInvoker().AsyncClientStreamingCall(method, null, options);
}
