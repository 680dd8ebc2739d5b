using Grpc.Core;
using Scheduler.Protocol;
using Scheduler.Protocol.Masters;
using Xunit;

namespace Scheduler.Protocol.Tests;

public sealed class NotLeaderTests
{
    [Fact]
    public void A_master_naming_the_leader_is_a_redirect_to_it()
    {
        var e = new RpcException(new Status(StatusCode.Unavailable, "not the leader"), new Metadata { { MetadataKeys.Leader, "m2:5050" } });
        Assert.True(NotLeader.Is(e, out var leader));
        Assert.Equal("m2:5050", leader);
    }

    [Fact]
    public void A_master_answering_unavailable_without_a_hint_knows_no_leader()
    {
        var e = new RpcException(new Status(StatusCode.Unavailable, "not the leader; no leader is known"));
        Assert.True(NotLeader.Is(e, out var leader));
        Assert.Null(leader);
    }

    [Fact]
    public void A_transport_failure_is_not_a_redirect()
    {
        var e = new RpcException(new Status(StatusCode.Unavailable, "Error starting gRPC call", new HttpRequestException("Connection refused")));
        Assert.False(NotLeader.Is(e, out _));
        Assert.False(NotLeader.Is(new RpcException(new Status(StatusCode.Internal, "boom")), out _));
    }
}
