using Grpc.Net.Client;
using System.Reflection;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Sched.V1;
using Grpc.Core;
using Scheduler.Protocol;
using Xunit;
using Scheduler.Channels;

namespace Scheduler.Integration.Tests;

/// <summary>Every RPC declared in protos/ is served: none answers UNIMPLEMENTED.</summary>
public sealed class RpcMappingTests(SharedCluster cluster) : IClassFixture<SharedCluster>
{
    private static readonly MethodInfo CallOneMethod = typeof(RpcMappingTests).GetMethod(nameof(CallOneAsync), BindingFlags.NonPublic | BindingFlags.Static)!;

    public static IEnumerable<ServiceDescriptor> Services() =>
        new[] { SchedulerReflection.Descriptor, OperatorReflection.Descriptor, AgentReflection.Descriptor }
            .SelectMany(f => f.Services);

    [Fact]
    public async Task Every_method_of_every_sched_v1_service_has_a_server_mapping()
    {
        var services = Services().ToList();
        Assert.Contains(services, s => s.FullName == "sched.v1.AgentFiles");
        var unimplemented = new List<string>();
        var called = 0;
        foreach (var service in services)
        {
            // AgentFiles is served by agents; everything else by the master.
            var address = service.FullName == "sched.v1.AgentFiles" ? cluster.Agents[0].Address : cluster.MasterAddress;
            using var channel = GrpcChannels.ForAddress(address);
            foreach (var method in service.Methods)
            {
                var generic = CallOneMethod.MakeGenericMethod(method.InputType.ClrType, method.OutputType.ClrType);
                var status = await (Task<StatusCode>)generic.Invoke(null, [channel, method])!;
                called++;
                if (status == StatusCode.Unimplemented)
                {
                    unimplemented.Add($"{method.FullName} (on {address})");
                }
            }
        }
        Assert.True(called >= 28, $"only {called} methods found");
        Assert.True(unimplemented.Count == 0, "UNIMPLEMENTED: " + string.Join(", ", unimplemented));
    }

    /// <summary>Calls a method with a default request and a short deadline; returns the status.</summary>
    private static async Task<StatusCode> CallOneAsync<TRequest, TResponse>(GrpcChannel channel, MethodDescriptor descriptor)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        var method = GrpcMethod.Of<TRequest, TResponse>(descriptor.Service, descriptor.Name);
        var options = new CallOptions(deadline: DateTime.UtcNow.AddSeconds(2));
        try
        {
            switch (method.Type)
            {
                case MethodType.Unary:
                    using (var call = channel.AsyncUnaryCall(method, new TRequest(), options))
                    {
                        await call.ResponseAsync;
                    }
                    break;
                case MethodType.ServerStreaming:
                    using (var call = channel.AsyncServerStreamingCall(method, new TRequest(), options))
                    {
                        while (await call.ResponseStream.MoveNext())
                        {
                        }
                    }
                    break;
                case MethodType.ClientStreaming:
                    using (var call = channel.CreateCallInvoker().AsyncClientStreamingCall(method, null, options))
                    {
                        await call.RequestStream.CompleteAsync();
                        await call.ResponseAsync;
                    }
                    break;
                case MethodType.DuplexStreaming:
                    using (var call = channel.AsyncDuplexStreamingCall(method, options))
                    {
                        await call.RequestStream.WriteAsync(new TRequest());
                        await call.RequestStream.CompleteAsync();
                        while (await call.ResponseStream.MoveNext())
                        {
                        }
                    }
                    break;
            }
            return StatusCode.OK;
        }
        catch (RpcException e)
        {
            return e.StatusCode;
        }
    }
}
