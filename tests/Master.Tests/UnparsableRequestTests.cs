using Grpc.Core;
using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Scheduler.Protocol;
using Xunit;
using Scheduler.Channels;

namespace Scheduler.Master.Tests;

/// <summary>Requests whose bytes are not the message the method takes, sent to a real master by
/// raw path with a bytes marshaller: each is answered INVALID_ARGUMENT naming the type expected
/// and why it did not parse, for every kind of method, and the master keeps serving.</summary>
public sealed class UnparsableRequestTests
{
    private static readonly Marshaller<byte[]> Bytes = Marshallers.Create(b => b, b => b);

    // Field 1 with wire type 7, which does not exist.
    private static readonly byte[] Garbage = [0x0F, 0xFF, 0xFF];

    private static Method<byte[], byte[]> Raw(MethodType type, IMethod method) => new(type, method.ServiceName, method.Name, Bytes, Bytes);

    [Fact]
    public async Task Garbage_gets_INVALID_ARGUMENT_naming_the_message_on_unary_and_streaming_methods_and_the_master_stays_up()
    {
        await using var master = await MasterFixture.StartAsync();
        var invoker = master.Channel.CreateCallInvoker();
        var deadline = () => new CallOptions(deadline: DateTime.UtcNow.AddSeconds(20));

        foreach (var (method, expected) in new (IMethod, string)[]
        {
            (OperatorMethods.GetRoles, "sched.v1.GetRolesRequest"),
            (OperatorMethods.UpdateQuota, "sched.v1.UpdateQuotaRequest"),
            (SchedulerMethods.Accept, "sched.v1.AcceptRequest"),
        })
        {
            var e = await Assert.ThrowsAsync<RpcException>(() => invoker.AsyncUnaryCall(Raw(MethodType.Unary, method), null, deadline(), Garbage).ResponseAsync);
            AssertRefused(e, expected);
        }

        foreach (var (method, expected) in new (IMethod, string)[]
        {
            (OperatorMethods.Subscribe, "sched.v1.OperatorSubscribeRequest"),
            (SchedulerMethods.Subscribe, "sched.v1.SubscribeRequest"),
        })
        {
            using var call = invoker.AsyncServerStreamingCall(Raw(MethodType.ServerStreaming, method), null, deadline(), Garbage);
            var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));
            AssertRefused(e, expected);
        }

        using (var link = invoker.AsyncDuplexStreamingCall(Raw(MethodType.DuplexStreaming, AgentLinkMethods.Connect), null, deadline()))
        {
            await link.RequestStream.WriteAsync(Garbage);
            var e = await Assert.ThrowsAsync<RpcException>(() => link.ResponseStream.MoveNext(CancellationToken.None));
            AssertRefused(e, "sched.v1.AgentMessage");
        }

        // Still up and answering well-formed calls.
        var health = await master.Channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest()).ResponseAsync;
        Assert.Equal("standalone", health.Role);
        await master.Channel.AsyncUnaryCall(OperatorMethods.GetRoles, new GetRolesRequest()).ResponseAsync;
    }

    private static void AssertRefused(RpcException e, string type)
    {
        Assert.True(e.StatusCode == StatusCode.InvalidArgument, $"{type}: {e.Status}");
        Assert.StartsWith($"cannot parse {type}: ", e.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("wire type", e.Status.Detail, StringComparison.OrdinalIgnoreCase);
    }
}
