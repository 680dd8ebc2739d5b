using Scheduler.Protocol;
using Grpc.Core;

namespace Scheduler.Master.Loop;

/// <summary>The RPC errors the master answers with.</summary>
public static class MasterErrors
{
    /// <summary>UNAVAILABLE with the <c>sched-leader</c> trailer (not sent when unknown: gRPC drops empty metadata values).</summary>
    public static RpcException NotLeader(string? leaderAddress)
    {
        var trailers = new Metadata { { MetadataKeys.Leader, leaderAddress ?? "" } };
        var detail = string.IsNullOrEmpty(leaderAddress)
            ? "not the leader; the leader is unknown, retry another master"
            : $"not the leader; the leader is {leaderAddress}";
        return new RpcException(new Status(StatusCode.Unavailable, detail), trailers);
    }

    public static RpcException InvalidArgument(string detail) => new(new Status(StatusCode.InvalidArgument, detail));

    public static RpcException PermissionDenied(string detail) => new(new Status(StatusCode.PermissionDenied, detail));

    public static RpcException NotFound(string detail) => new(new Status(StatusCode.NotFound, detail));

    public static RpcException FailedPrecondition(string detail) => new(new Status(StatusCode.FailedPrecondition, detail));

    public static RpcException Unimplemented(string detail) => new(new Status(StatusCode.Unimplemented, detail));

    public static RpcException Unavailable(string detail) => new(new Status(StatusCode.Unavailable, detail));
}
