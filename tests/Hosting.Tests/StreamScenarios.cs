using Grpc.Core;
using Grpc.Net.Client;
using Sched.V1;
using Scheduler.Protocol;
using Scheduler.Channels;

namespace Scheduler.Hosting.Tests;

/// <summary>Client sides of scenarios run against both servers (ours and grpcio's).</summary>
internal static class StreamScenarios
{
    /// <summary>Follows <c>TailFile(path)</c>, takes two messages, cancels the call and checks that
    /// the client sees CANCELLED; the caller then checks that the server's handler saw it.</summary>
    public static async Task CancelMidStreamAsync(GrpcChannel channel, string path, TimeSpan wait)
    {
        using var cts = new CancellationTokenSource();
        using var call = channel.AsyncServerStreamingCall(AgentFilesMethods.TailFile, new TailFileRequest { Follow = true, Path = path }, new CallOptions(cancellationToken: cts.Token));
        Assert.True(await call.ResponseStream.MoveNext().WaitAsync(wait));
        Assert.True(await call.ResponseStream.MoveNext().WaitAsync(wait));
        await cts.CancelAsync();
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await call.ResponseStream.MoveNext().WaitAsync(wait))
            {
            }
        });
        Assert.Equal(StatusCode.Cancelled, ex.StatusCode);
    }
}
