using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Sched.V1;
using Scheduler.Agent.Execution;
using Xunit;

namespace Scheduler.Agent.Tests;

public class FetcherTests
{
    private static readonly byte[] Script = Encoding.ASCII.GetBytes("#!/bin/sh\necho fetched-tool-ran\n");

    [Fact]
    public async Task Uris_are_fetched_verified_made_executable_extracted_and_failures_named()
    {
        using var server = StartServer(out var baseUrl);
        await using var h = new AgentHarness();
        var sha = Convert.ToHexStringLower(SHA256.HashData(Script));

        var ok = AgentHarness.ShellTask("ok", "./tool.sh && cat data/hello.txt");
        ok.Command.Uris.Add(new Sched.V1.Uri { Value = baseUrl + "tool.sh", Executable = true, Sha256 = sha, Cache = true });
        var archive = Path.Combine(h.FetchDir, "bundle.tar.gz");
        using (var gz = new GZipStream(File.Create(archive), CompressionLevel.Fastest))
        using (var tar = new TarWriter(gz))
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "data/") { Mode = (UnixFileMode)0x1ed });
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "data/hello.txt") { DataStream = new MemoryStream("from-archive\n"u8.ToArray()) });
        }
        ok.Command.Uris.Add(new Sched.V1.Uri { Value = "file://" + archive, Extract = true });
        h.Launch(ok);
        var end = await h.WaitTerminalAsync("ok");
        Assert.True(end.State == TaskState.TaskFinished, end.Message);
        Assert.Equal("fetched-tool-ran\nfrom-archive\n", await File.ReadAllTextAsync(Path.Combine(h.WorkDir, "sandboxes", "fw1", "ok", "stdout")));
        Assert.True(File.Exists(Path.Combine(h.WorkDir, "cache", sha)));

        var missing = AgentHarness.ShellTask("missing", "true");
        missing.Command.Uris.Add(new Sched.V1.Uri { Value = baseUrl + "nope" });
        h.Launch(missing);
        var m = await h.WaitTerminalAsync("missing");
        Assert.Equal((TaskState.TaskFailed, TaskStatus.Types.Reason.FetchFailed), (m.State, m.Reason));
        Assert.Contains("404", m.Message);

        var bad = AgentHarness.ShellTask("badsum", "true");
        bad.Command.Uris.Add(new Sched.V1.Uri { Value = baseUrl + "tool.sh", Sha256 = new string('0', 64) });
        h.Launch(bad);
        var b = await h.WaitTerminalAsync("badsum");
        Assert.Equal(TaskStatus.Types.Reason.FetchFailed, b.Reason);
        Assert.Contains("checksum mismatch", b.Message);
        Assert.Empty(Directory.GetFiles(Path.Combine(h.WorkDir, "sandboxes", "fw1", "badsum")));
    }

    [Fact]
    public async Task A_zip_is_extracted_into_the_sandbox_and_one_escaping_it_is_refused()
    {
        await using var h = new AgentHarness();
        var zip = Path.Combine(h.FetchDir, "tools.zip");
        using (var archive = ZipFile.Open(zip, ZipArchiveMode.Create))
        {
            var script = archive.CreateEntry("bin/run.sh");
            script.ExternalAttributes = (int)(0x81ed << 16); // regular file, rwxr-xr-x
            using (var w = new StreamWriter(script.Open()))
            {
                await w.WriteAsync("#!/bin/sh\necho zipped-tool-ran\n");
            }
            using (var w = new StreamWriter(archive.CreateEntry("conf/app.conf").Open()))
            {
                await w.WriteAsync("key=value\n");
            }
        }
        var ok = AgentHarness.ShellTask("zip", "sh bin/run.sh && cat conf/app.conf");
        ok.Command.Uris.Add(new Sched.V1.Uri { Value = "file://" + zip, Extract = true });
        h.Launch(ok);
        var end = await h.WaitTerminalAsync("zip");
        Assert.True(end.State == TaskState.TaskFinished, end.Message);
        var sandbox = Path.Combine(h.WorkDir, "sandboxes", "fw1", "zip");
        Assert.Equal("zipped-tool-ran\nkey=value\n", await File.ReadAllTextAsync(Path.Combine(sandbox, "stdout")));
        Assert.False(File.Exists(Path.Combine(sandbox, "tools.zip")), "the archive itself was kept in the sandbox");

        var evil = Path.Combine(h.FetchDir, "evil.zip");
        using (var archive = ZipFile.Open(evil, ZipArchiveMode.Create))
        using (var w = new StreamWriter(archive.CreateEntry("../../escaped.txt").Open()))
        {
            await w.WriteAsync("x");
        }
        var bad = AgentHarness.ShellTask("evilzip", "true");
        bad.Command.Uris.Add(new Sched.V1.Uri { Value = "file://" + evil, Extract = true });
        h.Launch(bad);
        var b = await h.WaitTerminalAsync("evilzip");
        Assert.Equal((TaskState.TaskFailed, TaskStatus.Types.Reason.FetchFailed), (b.State, b.Reason));
        Assert.Contains("cannot extract", b.Message);
        Assert.False(File.Exists(Path.Combine(h.WorkDir, "sandboxes", "escaped.txt")));
        Assert.False(File.Exists(Path.Combine(h.WorkDir, "escaped.txt")));
    }

    /// <summary>
    /// The agent fetches as root for tasks of any user: a <c>file://</c> URI outside the
    /// operator's <c>--fetch-allow-dir</c> directories (none by default), or through a symbolic
    /// link in one, is refused with a message naming the option, and nothing reaches the sandbox.
    /// </summary>
    [Fact]
    public async Task File_uris_are_read_only_beneath_the_allowed_directories_and_never_through_links()
    {
        var work = Directory.CreateTempSubdirectory("fetch-allow-").FullName;
        try
        {
            var allowed = Path.Combine(work, "artifacts");
            var sandbox = Path.Combine(work, "sandbox");
            Directory.CreateDirectory(allowed);
            Directory.CreateDirectory(sandbox);
            var secret = Path.Combine(work, "secret");
            await File.WriteAllTextAsync(secret, "host secret\n");
            await File.WriteAllTextAsync(Path.Combine(allowed, "tool.txt"), "artifact\n");
            File.CreateSymbolicLink(Path.Combine(allowed, "link"), secret);
            Directory.CreateSymbolicLink(Path.Combine(allowed, "etc"), "/etc");
            using var http = new HttpClient();
            var byDefault = new UriFetcher(Path.Combine(work, "cache"), http, 1 << 20);
            var fetcher = new UriFetcher(Path.Combine(work, "cache"), http, 1 << 20, [allowed + "/"]);

            await fetcher.FetchAsync(new Sched.V1.Uri { Value = "file://" + Path.Combine(allowed, "tool.txt") }, sandbox, CancellationToken.None);
            Assert.Equal("artifact\n", await File.ReadAllTextAsync(Path.Combine(sandbox, "tool.txt")));

            var refusals = new List<(string Uri, string Message)>();
            async Task Refused(UriFetcher f, string uri, string expected, string output)
            {
                var e = await Assert.ThrowsAsync<TaskLaunchException>(() => f.FetchAsync(new Sched.V1.Uri { Value = uri, OutputFile = output }, sandbox, CancellationToken.None));
                Assert.Equal(TaskStatus.Types.Reason.FetchFailed, e.Reason);
                Assert.Contains(expected, e.Message, StringComparison.Ordinal);
                Assert.False(File.Exists(Path.Combine(sandbox, output)), $"{uri} reached the sandbox");
                refusals.Add((uri, e.Message));
            }
            await Refused(byDefault, "file://" + Path.Combine(allowed, "tool.txt"), "--fetch-allow-dir", "a");
            await Refused(fetcher, "file:///etc/shadow", "--fetch-allow-dir", "b");
            await Refused(fetcher, "file://" + secret, "--fetch-allow-dir", "c");
            await Refused(fetcher, "file://" + allowed + "/../secret", "--fetch-allow-dir", "d");
            await Refused(fetcher, "file://" + Path.Combine(allowed, "link"), "symbolic link", "e");
            await Refused(fetcher, "file://" + Path.Combine(allowed, "etc", "passwd"), "symbolic link", "f");
            Assert.Equal(["tool.txt"], Directory.GetFiles(sandbox).Select(Path.GetFileName));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [Fact]
    public async Task An_agent_refuses_a_file_uri_outside_its_allowed_directories_with_fetch_failed()
    {
        await using var h = new AgentHarness();
        var secret = Path.Combine(h.WorkDir, "secret");
        await File.WriteAllTextAsync(secret, "host secret\n");
        var task = AgentHarness.ShellTask("steal", "cat secret");
        task.Command.Uris.Add(new Sched.V1.Uri { Value = "file://" + secret });
        h.Launch(task);
        var end = await h.WaitTerminalAsync("steal");
        Assert.Equal((TaskState.TaskFailed, TaskStatus.Types.Reason.FetchFailed), (end.State, end.Reason));
        Assert.Contains("--fetch-allow-dir", end.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(h.WorkDir, "sandboxes", "fw1", "steal", "secret")));
    }

    private static HttpListener StartServer(out string baseUrl)
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        baseUrl = $"http://127.0.0.1:{port}/";
        var listener = new HttpListener();
        listener.Prefixes.Add(baseUrl);
        listener.Start();
        _ = Task.Run(async () =>
        {
            while (listener.IsListening)
            {
                HttpListenerContext ctx;
                try
                {
                    ctx = await listener.GetContextAsync();
                }
                catch (Exception)
                {
                    return;
                }
                if (ctx.Request.Url!.AbsolutePath == "/tool.sh")
                {
                    await ctx.Response.OutputStream.WriteAsync(Script);
                }
                else
                {
                    ctx.Response.StatusCode = 404;
                }
                ctx.Response.Close();
            }
        });
        return listener;
    }
}
