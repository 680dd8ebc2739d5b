using Grpc.Reflection.V1Alpha;

namespace Scheduler.Hosting.Tests;

/// <summary>Server reflection (<c>grpc.reflection.v1alpha.ServerReflection</c>, on by default),
/// read with Grpc.Reflection's client as grpcurl and the like would.</summary>
public sealed class ReflectionTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static async Task<ServerReflectionResponse> AskAsync(ServerReflection.ServerReflectionClient client, ServerReflectionRequest request)
    {
        using var call = client.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(request);
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext().WaitAsync(Wait));
        return call.ResponseStream.Current;
    }

    [Fact]
    public async Task Lists_the_services_served_and_describes_them()
    {
        await using var server = await TestServer.StartAsync(extra: s => s.Add(new Grpc.HealthCheck.HealthServiceImpl()));
        using var channel = server.Channel();
        var client = new ServerReflection.ServerReflectionClient(channel);

        var list = await AskAsync(client, new ServerReflectionRequest { ListServices = "" });
        var names = list.ListServicesResponse.Service.Select(s => s.Name).ToList();
        Assert.Contains("sched.v1.Operator", names);
        Assert.Contains("sched.v1.AgentFiles", names);
        Assert.Contains("sched.v1.AgentLink", names);
        Assert.Contains("grpc.health.v1.Health", names);
        Assert.Contains("grpc.reflection.v1alpha.ServerReflection", names);
        // Not served here: not listed. (test.Echo has no descriptor to list.)
        Assert.DoesNotContain("sched.v1.Scheduler", names);
        Assert.DoesNotContain("test.Echo", names);

        // A client can fetch the schema of a listed service.
        var file = await AskAsync(client, new ServerReflectionRequest { FileContainingSymbol = "sched.v1.Operator" });
        var descriptors = file.FileDescriptorResponse.FileDescriptorProto
            .Select(b => Google.Protobuf.Reflection.FileDescriptorProto.Parser.ParseFrom(b)).ToList();
        var operatorFile = Assert.Single(descriptors, d => d.Service.Any(s => s.Name == "Operator"));
        Assert.Equal("sched.v1", operatorFile.Package);
        Assert.Contains(operatorFile.Service.Single(s => s.Name == "Operator").Method, m => m.Name == "GetHealth");
    }

    [Fact]
    public async Task Is_not_served_when_turned_off()
    {
        await using var server = await TestServer.StartAsync(new GrpcServerOptions { EnableReflection = false });
        using var channel = server.Channel();
        var client = new ServerReflection.ServerReflectionClient(channel);
        var ex = await Assert.ThrowsAsync<RpcException>(() => AskAsync(client, new ServerReflectionRequest { ListServices = "" }));
        Assert.Equal(StatusCode.Unimplemented, ex.StatusCode);
    }
}
