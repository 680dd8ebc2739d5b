using Google.Protobuf;
using Sched.V1;
using Scheduler.Protocol;
using Scheduler.Rpc;

namespace Scheduler.Agent.Files;

/// <summary>
/// <c>sched.v1.AgentFiles</c>: read-only access to <c>&lt;work&gt;/sandboxes</c> through
/// <see cref="SandboxDirectory"/>. Paths are relative to that root; absolute paths, <c>..</c>
/// and symbolic links are refused with PERMISSION_DENIED, missing paths with NOT_FOUND, a
/// directory where a file is needed with INVALID_ARGUMENT, FIFOs, sockets and devices with
/// FAILED_PRECONDITION.
/// </summary>
public sealed class AgentFilesService(string sandboxesRoot, TimeSpan followPoll)
{
    public const int MaxRead = 1024 * 1024;
    public const int DefaultRead = 64 * 1024;

    private readonly SandboxDirectory _sandboxes = new(sandboxesRoot);

    public ServiceRegistry Register(ServiceRegistry registry)
        => registry
            .AddUnary(AgentFilesMethods.ListFiles, ListFilesAsync)
            .AddUnary(AgentFilesMethods.ReadFile, ReadFileAsync)
            .AddServerStreaming(AgentFilesMethods.TailFile, TailFileAsync);

    public Task<ListFilesResponse> ListFilesAsync(ListFilesRequest request, ServerCallContext context)
    {
        var (isDirectory, entries) = Guarded(() => _sandboxes.List(request.Path));
        var response = new ListFilesResponse();
        var prefix = string.IsNullOrEmpty(request.Path) ? "" : request.Path.TrimEnd('/') + "/";
        foreach (var e in entries)
        {
            response.Files.Add(new Sched.V1.FileInfo
            {
                Path = isDirectory ? prefix + e.Name : request.Path,
                Size = (ulong)e.Size,
                Mode = e.Permissions,
                Mtime = Math.Floor(e.MtimeSeconds * 1000) / 1000,
                IsDir = e.IsDirectory,
            });
        }
        return Task.FromResult(response);
    }

    public async Task<ReadFileResponse> ReadFileAsync(ReadFileRequest request, ServerCallContext context)
    {
        if (request.Offset < 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "offset must be >= 0"));
        }
        using var file = Guarded(() => _sandboxes.OpenFile(request.Path));
        var length = request.Length == 0 ? DefaultRead : (int)Math.Min(request.Length, MaxRead);
        var size = RandomAccess.GetLength(file);
        var offset = Math.Min(request.Offset, size);
        var buffer = new byte[length];
        var read = 0;
        while (read < length)
        {
            var n = await RandomAccess.ReadAsync(file, buffer.AsMemory(read), offset + read, context.CancellationToken);
            if (n == 0)
            {
                break;
            }
            read += n;
        }
        return new ReadFileResponse { Data = ByteString.CopyFrom(buffer, 0, read), Offset = offset, Size = (ulong)Math.Max(size, offset + read) };
    }

    public async Task TailFileAsync(TailFileRequest request, IServerStreamWriter<FileChunk> stream, ServerCallContext context)
    {
        using var file = Guarded(() => _sandboxes.OpenFile(request.Path));
        var ct = context.CancellationToken;
        var size = RandomAccess.GetLength(file);
        var position = request.Offset >= 0 ? Math.Min(request.Offset, size) : Math.Max(0, size + request.Offset);
        var buffer = new byte[64 * 1024];
        while (!ct.IsCancellationRequested)
        {
            var read = await RandomAccess.ReadAsync(file, buffer, position, ct);
            if (read > 0)
            {
                await stream.WriteAsync(new FileChunk { Data = ByteString.CopyFrom(buffer, 0, read), Offset = position }, ct);
                position += read;
                continue;
            }
            if (!request.Follow || SandboxDirectory.IsUnlinked(file))
            {
                return;
            }
            await Task.Delay(followPoll, ct);
        }
    }

    /// <summary>Runs a sandbox access, turning its refusal into the matching status.</summary>
    private static T Guarded<T>(Func<T> access)
    {
        try
        {
            return access();
        }
        catch (SandboxAccessException e)
        {
            throw new RpcException(new Status(e.Refusal switch
            {
                SandboxRefusal.NotFound => StatusCode.NotFound,
                SandboxRefusal.Denied => StatusCode.PermissionDenied,
                SandboxRefusal.NotServable => StatusCode.FailedPrecondition,
                _ => StatusCode.InvalidArgument,
            }, e.Message));
        }
        catch (IOException e)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"the agent could not read the sandbox: {e.Message}; try again"));
        }
    }
}
