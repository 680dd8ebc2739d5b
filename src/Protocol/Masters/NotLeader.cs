using Grpc.Core;

namespace Scheduler.Protocol.Masters;

/// <summary>
/// Recognises a master's "I do not lead" answer: UNAVAILABLE sent by the master itself, with the
/// leader's address in the <c>sched-leader</c> trailer, or without it when the master knows no
/// leader (gRPC does not send an empty metadata value). A transport failure (refused, reset,
/// timed out) is UNAVAILABLE too, but raised by the client with the cause attached, and is not one.
/// </summary>
public static class NotLeader
{
    /// <summary>True when <paramref name="error"/> is a master's not-the-leader answer;
    /// <paramref name="leader"/> is then the hinted leader, or null when none is known.</summary>
    public static bool Is(RpcException error, out string? leader)
    {
        ArgumentNullException.ThrowIfNull(error);
        leader = null;
        if (error.StatusCode != StatusCode.Unavailable)
        {
            return false;
        }
        if (error.Trailers.Get(MetadataKeys.Leader) is { } entry)
        {
            leader = entry.Value.Length > 0 ? entry.Value : null;
            return true;
        }
        return error.Status.DebugException is null;
    }
}
