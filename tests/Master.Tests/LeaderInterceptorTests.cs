using System.Reflection;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Net.Client;
using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Scheduler.Protocol;
using Xunit;
using Scheduler.Channels;

namespace Scheduler.Master.Tests;

/// <summary>The leader check is one interceptor: a follower answers every <c>sched.v1</c> call
/// of the master's services with UNAVAILABLE and the leader's address, except GetHealth,
/// GetLeader, WhoAmI and CreateToken, which every master answers.</summary>
public sealed class LeaderInterceptorTests : IAsyncLifetime
{
    private static readonly MethodInfo CallOneMethod = typeof(LeaderInterceptorTests).GetMethod(nameof(CallOneAsync), BindingFlags.NonPublic | BindingFlags.Static)!;
    private LocalEtcdCluster _etcd = null!;

    public async Task InitializeAsync() => _etcd = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 1 });

    public async Task DisposeAsync() => await _etcd.DisposeAsync();

    [Fact]
    public async Task A_follower_redirects_every_method_of_the_master_services_but_health_and_leader()
    {
        await using var a = await MasterFixture.StartOnEtcdAsync(_etcd);
        await using var b = await MasterFixture.StartOnEtcdAsync(_etcd);
        var (leader, follower) = await MasterFixture.LeaderAndFollowerAsync(a, b);
        await Poll.UntilAsync(async () => (await follower.Operator(OperatorMethods.GetLeader, new GetLeaderRequest())).Leader?.Address == leader.Address,
            TimeSpan.FromSeconds(10), "the follower to observe the leader");

        var wrong = new List<string>();
        var called = 0;
        foreach (var service in new[] { SchedulerMethods.Service, AgentLinkMethods.Service, OperatorMethods.Service })
        {
            foreach (var method in service.Methods)
            {
                var generic = CallOneMethod.MakeGenericMethod(method.InputType.ClrType, method.OutputType.ClrType);
                var (code, hint) = await (Task<(StatusCode, string?)>)generic.Invoke(null, [follower.Channel, method])!;
                called++;
                // CreateToken is answered by every master too (the token key is the cluster's); this
                // one accepts no tokens.
                var answeredByAll = method.Name is "GetHealth" or "GetLeader" or "WhoAmI" or "CreateToken";
                var expected = method.Name == "CreateToken" ? StatusCode.FailedPrecondition : StatusCode.OK;
                if (answeredByAll ? code != expected : code != StatusCode.Unavailable || hint != leader.Address)
                {
                    wrong.Add($"{method.FullName}: {code}, hint '{hint}'");
                }
            }
        }
        Assert.True(called >= 25, $"only {called} methods found");
        Assert.True(wrong.Count == 0, "unexpected answers from the follower: " + string.Join("; ", wrong));
    }

    /// <summary>Calls a method with a default request; returns its status and leader hint.</summary>
    private static async Task<(StatusCode, string?)> CallOneAsync<TRequest, TResponse>(GrpcChannel channel, MethodDescriptor descriptor)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        var method = GrpcMethod.Of<TRequest, TResponse>(descriptor.Service, descriptor.Name);
        var options = new CallOptions(deadline: DateTime.UtcNow.AddSeconds(5));
        try
        {
            switch (method.Type)
            {
                case MethodType.Unary:
                    await channel.AsyncUnaryCall(method, new TRequest(), options);
                    break;
                case MethodType.ServerStreaming:
                    using (var call = channel.AsyncServerStreamingCall(method, new TRequest(), options))
                    {
                        await call.ResponseStream.MoveNext();
                    }
                    break;
                default:
                    using (var call = channel.AsyncDuplexStreamingCall(method, options))
                    {
                        await call.ResponseStream.MoveNext();
                    }
                    break;
            }
            return (StatusCode.OK, null);
        }
        catch (RpcException e)
        {
            return (e.StatusCode, e.Trailers.GetValue(MetadataKeys.Leader));
        }
    }
}
