using Google.Protobuf;
using Sched.V1;
using Scheduler.Agent.Native;
using Grpc.Core;

namespace Scheduler.Agent.Files;

/// <summary>
/// <c>sched.v1.AgentFiles</c>: read-only access to <c>&lt;work&gt;/sandboxes</c>. Paths are
/// relative to that root; absolute paths, <c>..</c> segments and symlinks resolving outside it
/// are refused with PERMISSION_DENIED, missing paths with NOT_FOUND.
/// </summary>
public sealed class AgentFilesService(string sandboxesRoot, TimeSpan followPoll) : AgentFiles.AgentFilesBase
{
    public const int MaxRead = 1024 * 1024;
    public const int DefaultRead = 64 * 1024;

    /// <summary>Ends follows (TailFile) when the server stops; set by the host once it serves.</summary>
    public CancellationToken Stopping { get; set; }

    public override Task<ListFilesResponse> ListFiles(ListFilesRequest request, ServerCallContext context) => ListFilesAsync(request, context);

    public override Task<ReadFileResponse> ReadFile(ReadFileRequest request, ServerCallContext context) => ReadFileAsync(request, context);

    public override async Task TailFile(TailFileRequest request, IServerStreamWriter<FileChunk> responseStream, ServerCallContext context)
    {
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

    public Task<ListFilesResponse> ListFilesAsync(ListFilesRequest request, ServerCallContext context)
    {
        var path = Resolve(request.Path);
        var response = new ListFilesResponse();
        if (File.Exists(path))
        {
            response.Files.Add(Describe(new System.IO.FileInfo(path), request.Path));
            return Task.FromResult(response);
        }
        if (!Directory.Exists(path))
        {
            throw NotFound(request.Path);
        }
        foreach (var entry in new DirectoryInfo(path).EnumerateFileSystemInfos().OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            response.Files.Add(Describe(entry, string.IsNullOrEmpty(request.Path) ? entry.Name : request.Path.TrimEnd('/') + "/" + entry.Name));
        }
        return Task.FromResult(response);
    }

    public async Task<ReadFileResponse> ReadFileAsync(ReadFileRequest request, ServerCallContext context)
    {
        var path = Resolve(request.Path);
        if (!File.Exists(path))
        {
            throw NotFound(request.Path);
        }
        if (request.Offset < 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "offset must be >= 0"));
        }
        var length = request.Length == 0 ? DefaultRead : (int)Math.Min(request.Length, MaxRead);
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var buffer = new byte[length];
        file.Position = Math.Min(request.Offset, file.Length);
        var read = await file.ReadAtLeastAsync(buffer, length, throwOnEndOfStream: false, context.CancellationToken);
        return new ReadFileResponse { Data = ByteString.CopyFrom(buffer, 0, read), Offset = file.Position - read, Size = (ulong)file.Length };
    }

    public async Task TailFileAsync(TailFileRequest request, IServerStreamWriter<FileChunk> stream, CancellationToken ct)
    {
        var path = Resolve(request.Path);
        if (!File.Exists(path))
        {
            throw NotFound(request.Path);
        }
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var position = request.Offset >= 0 ? Math.Min(request.Offset, file.Length) : Math.Max(0, file.Length + request.Offset);
        var buffer = new byte[64 * 1024];
        while (!ct.IsCancellationRequested)
        {
            file.Position = position;
            var read = await file.ReadAsync(buffer, ct);
            if (read > 0)
            {
                await stream.WriteAsync(new FileChunk { Data = ByteString.CopyFrom(buffer, 0, read), Offset = position }, ct);
                position += read;
                continue;
            }
            if (!request.Follow || !File.Exists(path))
            {
                return;
            }
            await Task.Delay(followPoll, ct);
        }
    }

    /// <summary>Maps a request path to a real path inside the root, or throws PERMISSION_DENIED/NOT_FOUND.</summary>
    public string Resolve(string relative)
    {
        relative ??= "";
        if (relative.StartsWith('/') || relative.Contains('\0', StringComparison.Ordinal))
        {
            throw Denied(relative, "absolute paths are not allowed; use FRAMEWORK/TASK/FILE relative to the sandboxes root");
        }
        if (relative.Split('/').Any(s => s == ".."))
        {
            throw Denied(relative, "'..' is not allowed");
        }
        var root = Libc.RealPath(sandboxesRoot) ?? throw NotFound("");
        var real = Libc.RealPath(Path.Combine(root, relative));
        if (real is null)
        {
            throw NotFound(relative);
        }
        if (real != root && !real.StartsWith(root + "/", StringComparison.Ordinal))
        {
            throw Denied(relative, "it resolves outside the sandboxes");
        }
        return real;
    }

    private static Sched.V1.FileInfo Describe(FileSystemInfo entry, string path) => new()
    {
        Path = path,
        Size = entry is System.IO.FileInfo f ? (ulong)f.Length : 0,
        Mode = (uint)entry.UnixFileMode,
        Mtime = new DateTimeOffset(entry.LastWriteTimeUtc).ToUnixTimeMilliseconds() / 1000.0,
        IsDir = entry is DirectoryInfo,
    };

    private static RpcException Denied(string path, string why)
        => new(new Status(StatusCode.PermissionDenied, $"access to '{path}' denied: {why}"));

    private static RpcException NotFound(string path)
        => new(new Status(StatusCode.NotFound, $"'{path}' does not exist in the agent's sandboxes"));
}
