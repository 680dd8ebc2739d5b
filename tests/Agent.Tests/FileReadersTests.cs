using System.Net;
using Grpc.Core;
using Sched.V1;
using Scheduler.Agent.Files;
using Scheduler.Channels;
using Scheduler.Hosting;
using Scheduler.Protocol;
using Xunit;

namespace Scheduler.Agent.Tests;

/// <summary>
/// File serving's blocking calls run on <see cref="FileReaders"/>, not on the thread pool. With
/// every reader held up in the kernel (as reads of a task's FIFO once were), file calls wait
/// without holding threads, the pool keeps serving everything else, calls past the queue are
/// refused at once, a waiting call can be cancelled, and all complete once the readers are free.
/// </summary>
public sealed class FileReadersTests : IAsyncLifetime
{
    private readonly string _sandboxes = Directory.CreateTempSubdirectory("file-readers-").FullName;
    private readonly FileReaders _readers = new(threads: 2, queue: 100);
    private readonly ManualResetEventSlim _kernel = new();
    private GrpcServer _server = null!;
    private Grpc.Net.Client.GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Path.Combine(_sandboxes, "fw", "t1"));
        File.WriteAllText(Path.Combine(_sandboxes, "fw", "t1", "stdout"), "hello\n");
        var options = new GrpcServerOptions();
        options.Endpoints.Add(new GrpcEndpoint(new IPEndPoint(IPAddress.Loopback, 0)));
        _server = await GrpcServer.StartAsync(options, new GrpcServices().Add(new AgentFilesService(_sandboxes, TimeSpan.FromMilliseconds(50), _readers)));
        _channel = GrpcChannels.ForAddress("127.0.0.1:" + _server.BoundEndpoints[0].Port);
    }

    public async Task DisposeAsync()
    {
        _kernel.Set();
        _channel.Dispose();
        await _server.DisposeAsync();
        _readers.Dispose();
        _kernel.Dispose();
        Directory.Delete(_sandboxes, recursive: true);
    }

    [Fact]
    public async Task With_every_reader_held_up_file_calls_wait_without_pool_threads_the_overflow_is_refused_and_all_finish_once_free()
    {
        // Both readers stuck, as in an open() or read() the kernel does not return from.
        var stuck = Enumerable.Range(0, _readers.Threads).Select(_ => _readers.RunAsync(() => _kernel.Wait(TimeSpan.FromMinutes(2)), CancellationToken.None)).ToArray();

        // 99 calls wait in the queue …
        var waiting = Enumerable.Range(0, 99).Select(_ => _channel.AsyncUnaryCall(AgentFilesMethods.ReadFile, new ReadFileRequest { Path = "fw/t1/stdout" }).ResponseAsync).ToList();
        await Poll.UntilAsync(() => _readers.Waiting == 99, TimeSpan.FromSeconds(20), () => $"99 calls to wait for a reader; waiting: {_readers.Waiting}");

        // … holding no thread: the pool still runs work at once.
        for (var i = 0; i < 20; i++)
        {
            await Task.Run(() => i).WaitAsync(TimeSpan.FromSeconds(2));
        }
        Assert.All(waiting, w => Assert.False(w.IsCompleted));

        // A waiting call whose caller gives up ends at once (its place is freed when a reader reaches it).
        var impatient = await Assert.ThrowsAsync<RpcException>(() => _channel.AsyncUnaryCall(AgentFilesMethods.ListFiles, new ListFilesRequest { Path = "fw" },
            new CallOptions(deadline: DateTime.UtcNow.AddMilliseconds(300))).ResponseAsync.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(StatusCode.DeadlineExceeded, impatient.StatusCode);

        // The queue is full: one more call is refused at once, saying why.
        var refused = await Assert.ThrowsAsync<RpcException>(() => _channel.AsyncUnaryCall(AgentFilesMethods.ReadFile, new ReadFileRequest { Path = "fw/t1/stdout" }).ResponseAsync.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.Contains("file readers", refused.Status.Detail, StringComparison.Ordinal);

        // The kernel lets go: every waiting call is answered with the file.
        _kernel.Set();
        await Task.WhenAll(stuck).WaitAsync(TimeSpan.FromSeconds(20));
        var answers = await Task.WhenAll(waiting).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(answers, a => Assert.Equal("hello\n", a.Data.ToStringUtf8()));
    }

    [Fact]
    public async Task Tail_and_list_read_on_the_readers()
    {
        using var call = _channel.AsyncServerStreamingCall(AgentFilesMethods.TailFile, new TailFileRequest { Path = "fw/t1/stdout" });
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal("hello\n", call.ResponseStream.Current.Data.ToStringUtf8());
        Assert.False(await call.ResponseStream.MoveNext(CancellationToken.None));
        var listed = await _channel.AsyncUnaryCall(AgentFilesMethods.ListFiles, new ListFilesRequest { Path = "fw/t1" }).ResponseAsync;
        Assert.Equal("fw/t1/stdout", Assert.Single(listed.Files).Path);
    }
}
