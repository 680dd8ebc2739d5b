using System.Net;
using Sched.V1;
using Scheduler.Protocol;
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

    public static async Task<int> ServeAsync()
    {
        var registry = new ServiceRegistry()
            .AddUnary(OperatorMethods.GetHealth, static (_, _) => Task.FromResult(Health))
            .AddServerStreaming(SchedulerMethods.Subscribe, SubscribeAsync);
        var options = new RpcServerOptions();
        options.Endpoints.Add(new RpcEndpoint(new IPEndPoint(IPAddress.Loopback, 0)));
        await using var server = new RpcServer(registry, options);
        await server.StartAsync();
        Console.WriteLine("port " + server.BoundEndpoints[0].Port);
        await Console.In.ReadToEndAsync();
        return 0;
    }

    private static async Task SubscribeAsync(SubscribeRequest request, IServerStreamWriter<Event> stream, ServerCallContext context)
    {
        var n = long.Parse(request.FrameworkInfo.Name, System.Globalization.CultureInfo.InvariantCulture);
        for (var i = 0L; i < n; i++)
        {
            await stream.WriteAsync(Heartbeat);
        }
    }
}
