using System.Collections.Concurrent;
using System.Globalization;
using Google.Protobuf;
using Sched.V1;

namespace Scheduler.Hosting.Tests;

/// <summary>What the test handlers saw that a client cannot: which calls saw their cancellation,
/// and how. Ids come from the request (a TailFile path, an <c>x-id</c> header), so each test
/// waits for its own calls only.</summary>
public sealed class HandlerEvents
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource<string>> _ended = new();

    /// <summary>Completes, with how it ended, when the call with this id saw its end: its own
    /// cancellation (the method, or for GetHealth the milliseconds past its deadline) or the
    /// server stopping (<c>stopping</c>).</summary>
    public Task<string> EndedAsync(string id) => Get(id).Task;

    internal void Ended(string id, string how) => Get(id).TrySetResult(how);

    private TaskCompletionSource<string> Get(string id)
        => _ended.GetOrAdd(id, _ => new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously));
}

/// <summary>
/// <c>sched.v1.Operator/GetHealth</c> with a behaviour chosen by the request header <c>x-mode</c>:
/// <c>echo</c> (default; copies x-echo and x-echo-bin into response headers and trailers),
/// <c>fail</c> (RpcException FAILED_PRECONDITION with the x-detail or UTF-8 x-detail-bin text and
/// trailers), <c>throw</c> (an InvalidOperationException), <c>sleep</c> (waits for the call's
/// cancellation and reports it under x-id), <c>deadline</c> (answers the milliseconds left until
/// the deadline the server sees, or "none"), <c>caller</c> (answers the authenticated caller:
/// its principal as role, its kind as version), <c>big</c> (a response of x-size bytes).
/// </summary>
public sealed class TestOperator(HandlerEvents events) : Operator.OperatorBase
{
    public const string SecretDetail = "secret internal detail";

    public override async Task<GetHealthResponse> GetHealth(GetHealthRequest request, ServerCallContext context)
    {
        var headers = context.RequestHeaders;
        switch (headers.GetValue("x-mode") ?? "echo")
        {
            case "fail":
                var trailers = new Metadata { { "x-reason", "requested" }, { "x-empty", "" } };
                var detail = headers.Get("x-detail-bin") is { } b ? System.Text.Encoding.UTF8.GetString(b.ValueBytes) : headers.GetValue("x-detail") ?? "failed";
                throw new RpcException(new Status(StatusCode.FailedPrecondition, detail), trailers);
            case "throw":
                throw new InvalidOperationException(SecretDetail);
            case "sleep":
                try
                {
                    await Task.Delay(Timeout.Infinite, context.CancellationToken);
                }
                catch (OperationCanceledException) when (headers.GetValue("x-id") is { } id)
                {
                    events.Ended(id, (DateTime.UtcNow - context.Deadline).TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture));
                    throw;
                }
                throw new InvalidOperationException("unreachable: an infinite delay ended");
            case "deadline":
                return new GetHealthResponse
                {
                    Role = context.Deadline == DateTime.MaxValue ? "none" : (context.Deadline - DateTime.UtcNow).TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture),
                };
            case "caller":
                var caller = AuthenticationInterceptor.CallerOf(context);
                return new GetHealthResponse { Role = caller.Display, Version = caller.Kind.ToString() };
            case "big":
                return new GetHealthResponse { Version = new string('x', int.Parse(headers.GetValue("x-size")!, CultureInfo.InvariantCulture)) };
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
}

/// <summary>
/// <c>sched.v1.AgentFiles/TailFile</c>: streams <c>offset</c> chunks ("chunk-i"); path
/// <c>fail-after</c> then fails with DATA_LOSS.
/// With follow=true it streams "tick" until the call is cancelled, or until the server stops
/// (<see cref="Stopping"/>, as the agent's file service does) unless the path is
/// <c>ignore-stop</c>; either end is reported under the path.
/// </summary>
public sealed class TestFiles(HandlerEvents events) : AgentFiles.AgentFilesBase
{
    /// <summary>The server's <see cref="GrpcServer.Stopping"/>, set once it has started.</summary>
    public CancellationToken Stopping { get; set; }

    public override async Task TailFile(TailFileRequest request, IServerStreamWriter<FileChunk> responseStream, ServerCallContext context)
    {
        if (request.Follow)
        {
            await FollowAsync(request.Path, responseStream, context);
            return;
        }
        for (var i = 0L; i < request.Offset; i++)
        {
            await responseStream.WriteAsync(new FileChunk { Offset = i, Data = ByteString.CopyFromUtf8("chunk-" + i) });
        }
        if (request.Path == "fail-after")
        {
            throw new RpcException(new Status(StatusCode.DataLoss, "stream broke after the messages"));
        }
    }

    private async Task FollowAsync(string path, IServerStreamWriter<FileChunk> stream, ServerCallContext context)
    {
        var stopping = path == "ignore-stop" ? CancellationToken.None : Stopping;
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, stopping);
        var i = 0L;
        try
        {
            while (true)
            {
                await stream.WriteAsync(new FileChunk { Offset = i++, Data = ByteString.CopyFromUtf8("tick") }, ended.Token);
                await Task.Delay(10, ended.Token);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            events.Ended(path, "stopping");
            throw new RpcException(new Status(StatusCode.Unavailable, "the test server is stopping"));
        }
        catch (OperationCanceledException)
        {
            events.Ended(path, context.Method);
            throw;
        }
    }
}

/// <summary><c>sched.v1.AgentLink/Connect</c>: answers each heartbeat with a ping of the same
/// sequence; when the client half-closes, ends OK with trailers x-end=done and x-end-empty="".</summary>
public sealed class TestLink : AgentLink.AgentLinkBase
{
    public override async Task Connect(IAsyncStreamReader<AgentMessage> requestStream, IServerStreamWriter<MasterMessage> responseStream, ServerCallContext context)
    {
        while (await requestStream.MoveNext(context.CancellationToken))
        {
            var m = requestStream.Current;
            if (m.MessageCase == AgentMessage.MessageOneofCase.Heartbeat)
            {
                await responseStream.WriteAsync(new MasterMessage { Ping = new MasterMessage.Types.Ping { Sequence = m.Heartbeat.Sequence } });
            }
        }
        context.ResponseTrailers.Add("x-end", "done");
        context.ResponseTrailers.Add("x-end-empty", "");
    }
}
