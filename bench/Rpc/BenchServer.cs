using System.Net;
using Sched.V1;
using Scheduler.Hosting;
using Grpc.Core;

namespace Scheduler.Bench.Rpc;

/// <summary>
/// The .NET bench server (run as a child process with <c>--serve</c>): Operator.GetHealth and
/// Scheduler.Subscribe streaming N heartbeat events (N = framework_info.name), the same
/// behaviour as cpp/echo_server.cc.
/// </summary>
internal static class BenchServer
{
    private static readonly GetHealthResponse Health = new() { Healthy = true, Role = "bench" };
    private static readonly Event Heartbeat = new() { Heartbeat = new Event.Types.Heartbeat() };

    /// <param name="tokenKey">With a token key file: every call must present a bearer token it
    /// signed (the bearer-token authentication scheme and the authentication interceptor, as a master).</param>
    /// <param name="tlsDir">With a directory holding <c>server.pem</c>, <c>server-key.pem</c> and
    /// <c>ca.pem</c>: serves TLS with that certificate (as a daemon given --tls-*).</param>
    public static async Task<int> ServeAsync(string? tokenKey = null, string? tlsDir = null)
    {
        var options = new GrpcServerOptions();
        if (tlsDir is not null)
        {
            options.Tls = ServerTls.FromFiles(new Scheduler.Channels.Tls.TlsFiles(Path.Combine(tlsDir, "server.pem"), Path.Combine(tlsDir, "server-key.pem"), Path.Combine(tlsDir, "ca.pem")));
        }
        if (tokenKey is not null)
        {
            var keys = Scheduler.Security.TokenKeys.LoadOrCreate(tokenKey);
            options.Authentication = new ServerAuthentication { Tokens = keys.ValidationParameters() };
        }
        options.Endpoints.Add(new GrpcEndpoint(new IPEndPoint(IPAddress.Loopback, 0)));
        await using var server = await GrpcServer.StartAsync(options, new GrpcServices().Add(new BenchOperator()).Add(new BenchScheduler()));
        Console.WriteLine("port " + server.BoundEndpoints[0].Port);
        await Console.In.ReadToEndAsync();
        return 0;
    }

    private sealed class BenchOperator : Operator.OperatorBase
    {
        public override Task<GetHealthResponse> GetHealth(GetHealthRequest request, ServerCallContext context) => Task.FromResult(Health);
    }

    private sealed class BenchScheduler : Sched.V1.Scheduler.SchedulerBase
    {
        public override async Task Subscribe(SubscribeRequest request, IServerStreamWriter<Event> responseStream, ServerCallContext context)
        {
            var n = long.Parse(request.FrameworkInfo.Name, System.Globalization.CultureInfo.InvariantCulture);
            for (var i = 0L; i < n; i++)
            {
                await responseStream.WriteAsync(Heartbeat);
            }
        }
    }
}
