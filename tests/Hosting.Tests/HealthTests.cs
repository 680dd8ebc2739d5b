using Grpc.Health.V1;
using Grpc.HealthCheck;

namespace Scheduler.Hosting.Tests;

/// <summary><c>grpc.health.v1.Health</c> (Grpc.HealthCheck's <see cref="HealthServiceImpl"/>)
/// served by a <see cref="GrpcServer"/>, as the master and the agent serve it.</summary>
public sealed class HealthTests : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private readonly HealthServiceImpl _health = new();
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        _health.SetStatus("", HealthCheckResponse.Types.ServingStatus.Serving);
        _health.SetStatus("sched.v1.Operator", HealthCheckResponse.Types.ServingStatus.NotServing);
        _server = await TestServer.StartAsync(extra: s => s.Add(_health));
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Check_answers_the_status_set_per_service_and_NOT_FOUND_for_others()
    {
        using var channel = _server.Channel();
        var client = new Health.HealthClient(channel);
        async Task<HealthCheckResponse.Types.ServingStatus> CheckAsync(string service)
            => (await client.CheckAsync(new HealthCheckRequest { Service = service }).ResponseAsync.WaitAsync(Wait)).Status;

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, await CheckAsync(""));
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, await CheckAsync("sched.v1.Operator"));
        var ex = await Assert.ThrowsAsync<RpcException>(() => CheckAsync("no.such.Service"));
        Assert.Equal(StatusCode.NotFound, ex.StatusCode);

        _health.SetStatus("sched.v1.Operator", HealthCheckResponse.Types.ServingStatus.Serving);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, await CheckAsync("sched.v1.Operator"));
    }

    [Fact]
    public async Task Watch_streams_each_change_of_status()
    {
        using var channel = _server.Channel();
        using var cts = new CancellationTokenSource();
        using var watch = new Health.HealthClient(channel).Watch(new HealthCheckRequest { Service = "sched.v1.Operator" }, cancellationToken: cts.Token);
        Assert.True(await watch.ResponseStream.MoveNext().WaitAsync(Wait));
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, watch.ResponseStream.Current.Status);
        _health.SetStatus("sched.v1.Operator", HealthCheckResponse.Types.ServingStatus.Serving);
        Assert.True(await watch.ResponseStream.MoveNext().WaitAsync(Wait));
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, watch.ResponseStream.Current.Status);
        await cts.CancelAsync();
        await Poll.UntilAsync(() => _server.RunningCalls == 0, Wait, () => "the watch to end on the server");
    }

    [PythonGrpcFact("grpc_health.v1.health_pb2_grpc")]
    public async Task A_grpcio_health_client_gets_the_same_answers()
    {
        var (code, output) = await PythonGrpc.RunAsync(PythonGrpc.Python,
            [Path.Combine(PythonGrpc.InteropDir, "py_health.py"), _server.Address, "=SERVING", "sched.v1.Operator=NOT_SERVING", "no.such.Service=NOT_FOUND"],
            TimeSpan.FromMinutes(1));
        Assert.True(code == 0, output);
        Assert.Equal(["ok ", "ok sched.v1.Operator", "ok no.such.Service"], output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')));
    }
}
