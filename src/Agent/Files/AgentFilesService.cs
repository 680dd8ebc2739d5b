using Google.Protobuf;
using Sched.V1;
using Grpc.Core;

namespace Scheduler.Agent.Files;

/// <summary>
/// <c>sched.v1.AgentFiles</c>: read-only access to <c>&lt;work&gt;/sandboxes</c> through
/// <see cref="SandboxDirectory"/>. Paths are relative to that root; absolute paths, <c>..</c>
/// and symbolic links are refused with PERMISSION_DENIED, missing paths with NOT_FOUND, a
/// directory where a file is needed with INVALID_ARGUMENT, FIFOs, sockets and devices with
/// FAILED_PRECONDITION. Every blocking system call runs on <see cref="Readers"/>, never on the
/// thread pool. With a <see cref="SandboxAccess"/>, callers read only the sandboxes it allows
/// them (PERMISSION_DENIED otherwise) and list only those frameworks.
/// </summary>
public sealed class AgentFilesService(string sandboxesRoot, TimeSpan followPoll, FileReaders? readers = null, SandboxAccess? access = null) : AgentFiles.AgentFilesBase
{
    public const int MaxRead = 1024 * 1024;
    public const int DefaultRead = 64 * 1024;

    private readonly SandboxDirectory _sandboxes = new(sandboxesRoot);

    /// <summary>The threads file calls read on (shared with the caller when given).</summary>
    public FileReaders Readers { get; } = readers ?? new FileReaders();

    /// <summary>Ends follows (TailFile) when the server stops; set by the host once it serves.</summary>
    public CancellationToken Stopping { get; set; }

    public override Task<ListFilesResponse> ListFiles(ListFilesRequest request, ServerCallContext context) => ListFilesAsync(request, context);

    public override Task<ReadFileResponse> ReadFile(ReadFileRequest request, ServerCallContext context) => ReadFileAsync(request, context);

    public override async Task TailFile(TailFileRequest request, IServerStreamWriter<FileChunk> responseStream, ServerCallContext context)
    {
        Authorize(request.Path, context);
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, Stopping);
        try
        {
            await TailFileAsync(request, responseStream, ended.Token);
        }
        catch (OperationCanceledException) when (Stopping.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "the agent is stopping; follow the file again once it is back"));
        }
    }

    public async Task<ListFilesResponse> ListFilesAsync(ListFilesRequest request, ServerCallContext context)
    {
        Authorize(request.Path, context);
        var (isDirectory, entries) = await Readers.RunAsync(() => Guarded(() => _sandboxes.List(request.Path)), context.CancellationToken);
        var response = new ListFilesResponse();
        var prefix = string.IsNullOrEmpty(request.Path) ? "" : request.Path.TrimEnd('/') + "/";
        var root = access is not null && SandboxAccess.FrameworkOf(request.Path) is null;
        foreach (var e in entries)
        {
            if (root && !access!.MayRead(Hosting.AuthenticationInterceptor.CallerOf(context), e.Name))
            {
                continue;
            }
            response.Files.Add(new Sched.V1.FileInfo
            {
                Path = isDirectory ? prefix + e.Name : request.Path,
                Size = (ulong)e.Size,
                Mode = e.Permissions,
                Mtime = Math.Floor(e.MtimeSeconds * 1000) / 1000,
                IsDir = e.IsDirectory,
            });
        }
        return response;
    }

    public async Task<ReadFileResponse> ReadFileAsync(ReadFileRequest request, ServerCallContext context)
    {
        if (request.Offset < 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "offset must be >= 0"));
        }
        Authorize(request.Path, context);
        var length = request.Length == 0 ? DefaultRead : (int)Math.Min(request.Length, MaxRead);
        var ct = context.CancellationToken;
        return await Readers.RunAsync(() =>
        {
            using var file = Guarded(() => _sandboxes.OpenFile(request.Path));
            var size = RandomAccess.GetLength(file);
            var offset = Math.Min(request.Offset, size);
            var buffer = new byte[length];
            var read = 0;
            while (read < length && !ct.IsCancellationRequested)
            {
                var n = RandomAccess.Read(file, buffer.AsSpan(read), offset + read);
                if (n == 0)
                {
                    break;
                }
                read += n;
            }
            return new ReadFileResponse { Data = ByteString.CopyFrom(buffer, 0, read), Offset = offset, Size = (ulong)Math.Max(size, offset + read) };
        }, ct);
    }

    public async Task TailFileAsync(TailFileRequest request, IServerStreamWriter<FileChunk> stream, CancellationToken ct)
    {
        var (file, size) = await Readers.RunAsync(() =>
        {
            var opened = Guarded(() => _sandboxes.OpenFile(request.Path));
            return (opened, RandomAccess.GetLength(opened));
        }, ct);
        using var _ = file;
        var position = request.Offset >= 0 ? Math.Min(request.Offset, size) : Math.Max(0, size + request.Offset);
        var buffer = new byte[64 * 1024];
        while (!ct.IsCancellationRequested)
        {
            var at = position;
            var read = await Readers.RunAsync(() => RandomAccess.Read(file, buffer, at), ct);
            if (read > 0)
            {
                await stream.WriteAsync(new FileChunk { Data = ByteString.CopyFrom(buffer, 0, read), Offset = position }, ct);
                position += read;
                continue;
            }
            if (!request.Follow || await Readers.RunAsync(() => SandboxDirectory.IsUnlinked(file), ct))
            {
                return;
            }
            await Task.Delay(followPoll, ct);
        }
    }

    private void Authorize(string path, ServerCallContext context) =>
        access?.Demand(Hosting.AuthenticationInterceptor.CallerOf(context), path);

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
