using System.Diagnostics;
using Sched.V1;
using Scheduler.Agent.Files;
using Grpc.Core;
using Xunit;

namespace Scheduler.Agent.Tests;

public class AgentFilesTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("files-").FullName;
    private readonly string _sandboxes;
    private readonly List<string> _fifos = [];

    public AgentFilesTests()
    {
        _sandboxes = Path.Combine(_root, "sandboxes");
        Directory.CreateDirectory(Path.Combine(_sandboxes, "fw", "t1"));
        File.WriteAllText(Path.Combine(_sandboxes, "fw", "t1", "stdout"), "hello\n");
        File.WriteAllText(Path.Combine(_root, "secret"), "no");
        File.CreateSymbolicLink(Path.Combine(_sandboxes, "fw", "t1", "escape"), Path.Combine(_root, "secret"));
        File.CreateSymbolicLink(Path.Combine(_sandboxes, "fw", "t1", "inside"), Path.Combine(_sandboxes, "fw", "t1", "stdout"));
        Directory.CreateSymbolicLink(Path.Combine(_sandboxes, "fw", "linkdir"), Path.Combine(_sandboxes, "fw", "t1"));
    }

    public void Dispose()
    {
        foreach (var fifo in _fifos)
        {
            ReleaseReaders(fifo);
        }
        Directory.Delete(_root, true);
        GC.SuppressFinalize(this);
    }

    public static TheoryData<bool> Openers => new() { true, false };

    [Theory]
    [InlineData("/etc/passwd", true)]
    [InlineData("fw/../../secret", true)]
    [InlineData("..", true)]
    [InlineData("fw/t1/escape", true)]
    [InlineData("fw/t1/inside", true)]
    [InlineData("fw/linkdir/stdout", true)]
    [InlineData("fw/t1/escape", false)]
    [InlineData("fw/t1/inside", false)]
    [InlineData("fw/linkdir/stdout", false)]
    public void Absolute_paths_dot_dot_and_symbolic_links_are_denied(string path, bool openat2)
    {
        var sandboxes = new SandboxDirectory(_sandboxes, openat2);
        var e = Assert.Throws<SandboxAccessException>(() => sandboxes.OpenFile(path).Dispose());
        Assert.Equal(SandboxRefusal.Denied, e.Refusal);
    }

    [Theory]
    [MemberData(nameof(Openers))]
    public void Files_inside_are_read_and_missing_ones_are_not_found(bool openat2)
    {
        var sandboxes = new SandboxDirectory(_sandboxes, openat2);
        using (var file = sandboxes.OpenFile("fw/t1/stdout"))
        {
            var buffer = new byte[16];
            Assert.Equal("hello\n", System.Text.Encoding.UTF8.GetString(buffer, 0, RandomAccess.Read(file, buffer, 0)));
        }
        Assert.Equal(SandboxRefusal.NotFound, Assert.Throws<SandboxAccessException>(() => sandboxes.OpenFile("fw/t1/nope")).Refusal);
        Assert.Equal(SandboxRefusal.NotFound, Assert.Throws<SandboxAccessException>(() => sandboxes.OpenFile("fw/t1/stdout/x")).Refusal);
        Assert.Equal(SandboxRefusal.InvalidPath, Assert.Throws<SandboxAccessException>(() => sandboxes.OpenFile("fw/t1")).Refusal);
        var (isDirectory, entries) = sandboxes.List("fw/t1");
        Assert.True(isDirectory);
        Assert.Equal(["escape", "inside", "stdout"], entries.Select(e => e.Name));
        Assert.Equal(6, entries.Single(e => e.Name == "stdout").Size);
    }

    /// <summary>Opening a FIFO for reading blocks until a writer comes; each such call used to hold
    /// a thread-pool thread, and enough of them took the agent down. Many concurrent reads of a
    /// FIFO must all be refused promptly.</summary>
    [Theory]
    [MemberData(nameof(Openers))]
    public async Task Reading_a_fifo_concurrently_is_refused_at_once_without_blocking(bool openat2)
    {
        MakeFifo(Path.Combine(_sandboxes, "fw", "t1", "pipe"));
        var service = new AgentFilesService(_sandboxes, TimeSpan.FromMilliseconds(50));
        var sandboxes = new SandboxDirectory(_sandboxes, openat2);
        var calls = Enumerable.Range(0, 64).Select(i => Task.Run(async () =>
        {
            if (i % 2 == 0)
            {
                return Assert.Throws<SandboxAccessException>(() => sandboxes.OpenFile("fw/t1/pipe")).Message;
            }
            var e = await Assert.ThrowsAsync<RpcException>(() => service.ReadFileAsync(new ReadFileRequest { Path = "fw/t1/pipe" }, new TestCallContext()));
            Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
            return e.Status.Detail;
        })).ToArray();
        var all = Task.WhenAll(calls);
        var finished = await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(10)));
        Assert.True(finished == all, $"reads of a FIFO still blocked after 10 s ({calls.Count(c => !c.IsCompleted)} of {calls.Length})");
        Assert.All(await all, m => Assert.Contains("FIFO", m, StringComparison.Ordinal));
        var listed = await service.ListFilesAsync(new ListFilesRequest { Path = "fw/t1" }, new TestCallContext());
        Assert.Contains(listed.Files, f => f.Path == "fw/t1/pipe");
    }

    /// <summary>
    /// A task owns its sandbox and can swap a directory for a symbolic link to <c>/etc</c> at any
    /// moment. However the swaps and the agent's reads interleave, a read returns the sandbox's
    /// file or a clear refusal, never host content.
    /// </summary>
    [Theory]
    [MemberData(nameof(Openers))]
    public async Task A_task_swapping_a_directory_for_a_link_to_etc_never_makes_a_read_return_host_content(bool openat2)
    {
        var task = Path.Combine(_sandboxes, "fw", "t2");
        var dir = Path.Combine(task, "d");
        var parked = Path.Combine(task, "d.real");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "passwd"), "sandbox\n");
        var service = new AgentFilesService(_sandboxes, TimeSpan.FromMilliseconds(50));
        var sandboxes = new SandboxDirectory(_sandboxes, openat2);
        using var stop = new CancellationTokenSource();
        var swaps = 0L;
        var swapper = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                Directory.Move(dir, parked);
                File.CreateSymbolicLink(dir, "/etc");
                File.Delete(dir);
                Directory.Move(parked, dir);
                Interlocked.Increment(ref swaps);
            }
        });
        var sandboxReads = 0;
        var refusals = new Dictionary<string, int>();
        try
        {
            for (var i = 0; i < 4000; i++)
            {
                string text;
                try
                {
                    if (i % 2 == 0)
                    {
                        using var file = sandboxes.OpenFile("fw/t2/d/passwd");
                        var buffer = new byte[4096];
                        text = System.Text.Encoding.UTF8.GetString(buffer, 0, RandomAccess.Read(file, buffer, 0));
                    }
                    else
                    {
                        var response = await service.ReadFileAsync(new ReadFileRequest { Path = "fw/t2/d/passwd" }, new TestCallContext());
                        text = response.Data.ToStringUtf8();
                    }
                }
                catch (SandboxAccessException e)
                {
                    refusals[e.Refusal.ToString()] = refusals.GetValueOrDefault(e.Refusal.ToString()) + 1;
                    continue;
                }
                catch (RpcException e)
                {
                    Assert.True(e.StatusCode is StatusCode.NotFound or StatusCode.PermissionDenied, $"unexpected status: {e.Status}");
                    refusals[e.StatusCode.ToString()] = refusals.GetValueOrDefault(e.StatusCode.ToString()) + 1;
                    continue;
                }
                Assert.True(text == "sandbox\n", $"read {i} returned host content: {text[..Math.Min(40, text.Length)]}");
                sandboxReads++;
            }
        }
        finally
        {
            await stop.CancelAsync();
            await swapper;
        }
        // The race was real: the directory was swapped while reads ran, and both outcomes occurred.
        Assert.True(Interlocked.Read(ref swaps) > 10, $"only {swaps} swaps happened");
        Assert.True(sandboxReads > 0 && refusals.Count > 0, $"reads of the sandbox file: {sandboxReads}; refusals: {string.Join(", ", refusals)}");
    }

    private void MakeFifo(string path)
    {
        using (var mkfifo = Process.Start("mkfifo", [path]))
        {
            mkfifo.WaitForExit();
            Assert.Equal(0, mkfifo.ExitCode);
        }
        _fifos.Add(path);
    }

    /// <summary>Opens and closes the FIFO for writing, which releases any reader blocked in open().</summary>
    private static void ReleaseReaders(string fifo)
    {
        try
        {
            using var writer = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(Open(fifo, 1 | 0x800), true), FileAccess.Write);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            // No reader was blocked (ENXIO): nothing to release.
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "open")]
    private static extern nint Open(string path, int flags);

    /// <summary>A call context for invoking the handlers directly (no server).</summary>
    private sealed class TestCallContext : ServerCallContext
    {
        private Status _status;
        private WriteOptions? _writeOptions;

        protected override string MethodCore => "/sched.v1.AgentFiles/ReadFile";

        protected override string HostCore => "localhost";

        protected override string PeerCore => "test";

        protected override DateTime DeadlineCore => DateTime.MaxValue;

        protected override Metadata RequestHeadersCore { get; } = [];

        protected override CancellationToken CancellationTokenCore => CancellationToken.None;

        protected override Metadata ResponseTrailersCore { get; } = [];

        protected override Status StatusCore
        {
            get => _status;
            set => _status = value;
        }

        protected override WriteOptions? WriteOptionsCore
        {
            get => _writeOptions;
            set => _writeOptions = value;
        }

        protected override AuthContext AuthContextCore => new(null, []);

        protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => throw new NotSupportedException();

        protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
    }
}
