using System.Net;
using System.Net.Sockets;
using Sched.V1;
using Scheduler.Protocol;
using Scheduler.Channels;

namespace Scheduler.Hosting.Tests;

/// <summary>What <see cref="GrpcServer.StartAsync"/> makes of <see cref="GrpcServerOptions"/>:
/// endpoints, keepalive, stopping.</summary>
public sealed class GrpcServerTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static async Task<bool> HealthyAsync(string address)
    {
        using var channel = GrpcChannels.ForAddress(address);
        return (await channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest()).ResponseAsync.WaitAsync(Wait)).Healthy;
    }

    [Fact]
    public async Task Options_without_endpoints_are_refused_with_what_to_add()
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => GrpcServer.StartAsync(new GrpcServerOptions(), new GrpcServices()));
        Assert.Contains("add at least one GrpcEndpoint", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_endpoint_is_bound_on_its_own_port_and_serves()
    {
        var options = new GrpcServerOptions();
        options.Endpoints.Add(new GrpcEndpoint(new IPEndPoint(IPAddress.Loopback, 0)));
        options.Endpoints.Add(new GrpcEndpoint(new IPEndPoint(IPAddress.Loopback, 0)));
        await using var server = await TestServer.StartAsync(options);
        var bound = server.Server.BoundEndpoints;
        Assert.Equal(2, bound.Count);
        Assert.All(bound, b => Assert.NotEqual(0, b.Port));
        Assert.NotEqual(bound[0].Port, bound[1].Port);
        foreach (var endpoint in bound)
        {
            Assert.True(await HealthyAsync(endpoint.ToString()));
        }
    }

    [Fact]
    public async Task A_port_in_use_fails_the_start()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var options = new GrpcServerOptions();
        options.Endpoints.Add(new GrpcEndpoint((IPEndPoint)taken.LocalEndpoint));
        await Assert.ThrowsAsync<IOException>(() => TestServer.StartAsync(options));
    }

    [Fact]
    public async Task Idle_connections_are_pinged_and_one_that_stops_answering_is_closed()
    {
        await using var server = await TestServer.StartAsync(new GrpcServerOptions
        {
            KeepAlivePingDelay = TimeSpan.FromSeconds(1),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(1),
        });
        await using var answering = await RawHttp2Connection.ConnectAsync(server.EndPoint);
        await using var silent = await RawHttp2Connection.ConnectAsync(server.EndPoint);
        silent.AnswerPings = false;
        await answering.PingReceived.WaitAsync(Wait);
        await silent.PingReceived.WaitAsync(Wait);
        // The silent peer is dropped after the ping timeout; the answering one stays usable.
        await silent.Closed.WaitAsync(Wait);
        Assert.False(answering.Closed.IsCompleted);
        var stream = await answering.OpenAsync("/sched.v1.Operator/GetHealth");
        await answering.SendDataAsync(stream, RawHttp2Connection.GrpcMessage([]), endStream: true);
        await stream.Ended.WaitAsync(Wait);
        Assert.True(stream.GrpcStatus == 0, stream.Outcome);
    }

    [Fact]
    public async Task Stop_is_idempotent_and_Stopping_fires()
    {
        var server = await TestServer.StartAsync();
        var stopping = server.Server.Stopping;
        Assert.False(stopping.IsCancellationRequested);
        var first = server.StopAsync();
        var second = server.StopAsync();
        Assert.Same(first, second);
        await first.WaitAsync(Wait);
        Assert.True(stopping.IsCancellationRequested);
        await server.DisposeAsync();
        using var channel = GrpcChannels.ForAddress(server.Address);
        var ex = await Assert.ThrowsAsync<RpcException>(() => channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest()).ResponseAsync.WaitAsync(Wait));
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
    }
}
