using System.Net;
using Google.Protobuf;
using Sched.V1;
using Scheduler.Protocol;

namespace Scheduler.Rpc.Tests;

/// <summary>
/// Test handlers mapped on the real sched.v1 methods (unary GetHealth, server-streaming TailFile,
/// bidi AgentLink.Connect) plus a hand-made client-streaming <c>/test.Echo/Collect</c>.
/// </summary>
public static class TestService
{
    /// <summary>A client-streaming method that is not in sched.v1: concatenates the chunks.</summary>
    public static readonly Method<FileChunk, FileChunk> Collect =
        new(MethodType.ClientStreaming, "test.Echo", "Collect", FileChunk.Parser, FileChunk.Parser);

    /// <summary>A unary method not in sched.v1 (never reached when the client refuses to send).</summary>
    public static readonly Method<FileChunk, FileChunk> EchoUnary =
        new(MethodType.Unary, "test.Echo", "Echo", FileChunk.Parser, FileChunk.Parser);

    /// <summary>A method the server does not map.</summary>
    public static readonly Method<GetHealthRequest, GetHealthResponse> Missing =
        new(MethodType.Unary, "test.Echo", "Missing", GetHealthRequest.Parser, GetHealthResponse.Parser);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, TaskCompletionSource<string>> CancelledStreams = new();

    /// <summary>Completes when a follow-mode TailFile call with this path saw its cancellation.</summary>
    public static Task<string> StreamCancelledAsync(string id)
        => CancelledStreams.GetOrAdd(id, _ => new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    public static ServiceRegistry CreateRegistry()
    {
        var registry = new ServiceRegistry();
        registry.AddUnary(OperatorMethods.GetHealth, GetHealthAsync);
        registry.AddServerStreaming(AgentFilesMethods.TailFile, TailFileAsync);
        registry.AddClientStreaming(Collect, CollectAsync);
        registry.AddUnary(EchoUnary, static (chunk, _) => Task.FromResult(chunk));
        registry.AddDuplexStreaming(AgentLinkMethods.Connect, ConnectAsync);
        return registry;
    }

    /// <summary>
    /// Behaviour chosen by the request header <c>x-mode</c>: <c>echo</c> (default; copies x-echo
    /// and x-echo-bin into response headers and trailers), <c>fail</c> (RpcException with the
    /// x-detail text), <c>throw</c> (an InvalidOperationException), <c>sleep</c> (waits for
    /// cancellation, reports DEADLINE/CANCELLED), <c>big</c> (response with x-size bytes).
    /// </summary>
    private static async Task<GetHealthResponse> GetHealthAsync(GetHealthRequest request, ServerCallContext context)
    {
        var headers = context.RequestHeaders;
        var mode = headers.GetValue("x-mode") ?? "echo";
        switch (mode)
        {
            case "fail":
                var trailers = new Metadata { { "x-reason", "requested" }, { "x-empty", "" } };
                var detail = headers.Get("x-detail-bin") is { } b ? System.Text.Encoding.UTF8.GetString(b.ValueBytes) : headers.GetValue("x-detail") ?? "failed";
                throw new RpcException(new Status(StatusCode.FailedPrecondition, detail), trailers);
            case "throw":
                throw new InvalidOperationException("secret internal detail");
            case "sleep":
                try
                {
                    await Task.Delay(Timeout.Infinite, context.CancellationToken);
                }
                catch (OperationCanceledException) when (headers.GetValue("x-id") is { } id)
                {
                    var late = DateTime.UtcNow - context.Deadline;
                    CancelledStreams.GetOrAdd(id, _ => new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously))
                        .TrySetResult(late.TotalMilliseconds.ToString("F0"));
                    throw;
                }
                break;
            case "deadline":
                return new GetHealthResponse { Role = context.Deadline == DateTime.MaxValue ? "none" : (context.Deadline - DateTime.UtcNow).TotalMilliseconds.ToString("F0") };
            case "big":
                return new GetHealthResponse { Version = new string('x', int.Parse(headers.GetValue("x-size")!)) };
        }
        if (headers.Get("x-echo") is { } echo)
        {
            await context.WriteResponseHeadersAsync(new Metadata { { "x-echo", echo.Value } });
            context.ResponseTrailers.Add("x-echo-trailer", echo.Value);
        }
        if (headers.Get("x-echo-bin") is { } bin)
        {
            context.ResponseTrailers.Add("x-echo-bin", bin.ValueBytes);
        }
        return new GetHealthResponse { Healthy = true, Role = "test", Version = context.Peer };
    }

    /// <summary>Streams <c>offset</c> chunks (each "chunk-i"); with follow=true, streams until
    /// cancelled and signals <see cref="StreamCancelledAsync"/> for its path.</summary>
    private static async Task TailFileAsync(TailFileRequest request, IServerStreamWriter<FileChunk> stream, ServerCallContext context)
    {
        if (request.Follow)
        {
            var i = 0L;
            try
            {
                while (true)
                {
                    await stream.WriteAsync(new FileChunk { Offset = i++, Data = ByteString.CopyFromUtf8("tick") });
                    await Task.Delay(10, context.CancellationToken);
                }
            }
            catch (OperationCanceledException)
            {
                CancelledStreams.GetOrAdd(request.Path, _ => new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult(context.Method);
                throw;
            }
        }
        if (request.Path == "concurrent")
        {
            // Ten writers at once: the stream must queue them, never interleave frames.
            await Task.WhenAll(Enumerable.Range(0, 10).Select(w => Task.Run(async () =>
            {
                for (var i = 0L; i < request.Offset; i++)
                {
                    await stream.WriteAsync(new FileChunk { Offset = w, Data = ByteString.CopyFrom(new byte[100 + w]) });
                }
            })));
            return;
        }
        for (var i = 0L; i < request.Offset; i++)
        {
            await stream.WriteAsync(new FileChunk { Offset = i, Data = ByteString.CopyFromUtf8("chunk-" + i) });
        }
        if (request.Path == "fail-after")
        {
            throw new RpcException(new Status(StatusCode.DataLoss, "stream broke after the messages"));
        }
    }

    private static async Task<FileChunk> CollectAsync(IAsyncStreamReader<FileChunk> requests, ServerCallContext context)
    {
        using var all = new MemoryStream();
        var count = 0L;
        while (await requests.MoveNext())
        {
            requests.Current.Data.WriteTo(all);
            count++;
        }
        return new FileChunk { Offset = count, Data = ByteString.CopyFrom(all.ToArray()) };
    }

    private static async Task ConnectAsync(IAsyncStreamReader<AgentMessage> requests, IServerStreamWriter<MasterMessage> responses, ServerCallContext context)
    {
        if (context.RequestHeaders.GetValue("x-mode") == "self-cancel")
        {
            // The handler ends the call from its side while its reader waits for a message the
            // client never sends: the reader must end, and the client get the handler's status.
            var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var reader = Task.Run(async () =>
            {
                try
                {
                    while (await requests.MoveNext(context.CancellationToken))
                    {
                        first.TrySetResult();
                    }
                    return "ended";
                }
                catch (OperationCanceledException)
                {
                    return "cancelled";
                }
            });
            await first.Task;
            context.Cancel();
            var how = await reader;
            throw new RpcException(new Status(StatusCode.FailedPrecondition, "ended by the handler; its reader was " + how));
        }
        while (await requests.MoveNext())
        {
            var m = requests.Current;
            if (m.MessageCase == AgentMessage.MessageOneofCase.Heartbeat)
            {
                await responses.WriteAsync(new MasterMessage { Ping = new MasterMessage.Types.Ping { Sequence = m.Heartbeat.Sequence } });
            }
        }
        context.ResponseTrailers.Add("x-end", "done");
        context.ResponseTrailers.Add("x-end-empty", "");
    }

    public static async Task<RpcServer> StartAsync(RpcServerOptions? options = null, System.Security.Cryptography.X509Certificates.X509Certificate2? certificate = null)
    {
        options ??= new RpcServerOptions();
        if (options.Endpoints.Count == 0)
        {
            options.Endpoints.Add(new RpcEndpoint(new IPEndPoint(IPAddress.Loopback, 0), certificate));
        }
        var server = new RpcServer(CreateRegistry(), options);
        await server.StartAsync();
        return server;
    }
}
