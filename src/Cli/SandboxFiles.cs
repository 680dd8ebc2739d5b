using Grpc.Net.Client;
using Sched.V1;
using Scheduler.Protocol;
using Grpc.Core;
using Scheduler.Channels;

namespace Scheduler.Cli;

/// <summary>Reads a task's sandbox files from its agent's AgentFiles service.</summary>
public sealed class SandboxFiles : IDisposable
{
    private readonly GrpcChannel _channel;

    public SandboxFiles(string agentAddress, GrpcChannelSettings? settings = null)
    {
        AgentAddress = agentAddress;
        _channel = GrpcChannels.ForAddress(agentAddress, settings);
    }

    public string AgentAddress { get; }

    public static string PathOf(string frameworkId, string taskId, string file) => $"{frameworkId}/{taskId}/{file}";

    /// <summary>Copies the file from <paramref name="offset"/> to its current end; returns the new offset.</summary>
    public async Task<long> CopyToEndAsync(string path, long offset, Stream destination, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(destination);
        while (true)
        {
            var request = new ReadFileRequest { Path = path, Offset = offset, Length = 1 << 20 };
            using var call = _channel.AsyncUnaryCall(AgentFilesMethods.ReadFile, request, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: ct));
            var response = await call.ResponseAsync;
            if (response.Data.Length == 0)
            {
                return offset;
            }
            response.Data.WriteTo(destination);
            await destination.FlushAsync(ct);
            offset += response.Data.Length;
        }
    }

    /// <summary>Streams the file from <paramref name="offset"/>, following appends until
    /// <paramref name="ct"/> is cancelled or the sandbox goes away; returns the offset reached.</summary>
    public async Task<long> FollowAsync(string path, long offset, Stream destination, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(destination);
        try
        {
            using var call = _channel.AsyncServerStreamingCall(AgentFilesMethods.TailFile, new TailFileRequest { Path = path, Offset = offset, Follow = true }, new CallOptions(cancellationToken: ct));
            while (await call.ResponseStream.MoveNext(ct))
            {
                var chunk = call.ResponseStream.Current;
                chunk.Data.WriteTo(destination);
                // Counted as soon as it is written, so a caller that stops following and reads on
                // from the returned offset never prints a chunk twice.
                offset = chunk.Offset + chunk.Data.Length;
                await destination.FlushAsync(ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (RpcException e) when (ct.IsCancellationRequested || e.StatusCode == StatusCode.Cancelled)
        {
        }
        return offset;
    }

    public void Dispose() => _channel.Dispose();
}
