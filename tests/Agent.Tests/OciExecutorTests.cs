using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Sched.V1;
using Xunit;

namespace Scheduler.Agent.Tests;

/// <summary>
/// OCI containers with real runc and an image built during the test from busybox-static with
/// umoci. Root only (runc needs it); CI runs as root.
/// </summary>
public class OciExecutorTests
{
    [NeedsFact(Needs.Containers)]
    public async Task A_container_sees_only_its_rootfs_and_sandbox_and_the_image_cache_is_reused()
    {
        await using var h = new AgentHarness();
        var layout = BuildImage(h.WorkDir);
        File.WriteAllText(Path.Combine(h.WorkDir, "host-only-marker"), "x");
        h.Launch(OciTask("c1", $"oci:{layout}:t", "ls / | tr '\\n' ' '; echo; echo in-sandbox > /mnt/sandbox/out; test -e /host-only-marker && echo LEAK; hostname"));
        var end = await h.WaitTerminalAsync("c1", TimeSpan.FromSeconds(60));
        var sandbox = Path.Combine(h.WorkDir, "sandboxes", "fw1", "c1");
        var stdout = await File.ReadAllTextAsync(Path.Combine(sandbox, "stdout"));
        Assert.True(end.State == TaskState.TaskFinished, $"{end.State} {end.Message}; stderr: {await File.ReadAllTextAsync(Path.Combine(sandbox, "stderr"))}");
        Assert.Contains("bin", stdout);
        Assert.DoesNotContain("LEAK", stdout);
        Assert.DoesNotContain("work", stdout);
        Assert.Contains("task", stdout);
        Assert.Equal("in-sandbox\n", await File.ReadAllTextAsync(Path.Combine(sandbox, "out")));
        var cached = Directory.GetDirectories(Path.Combine(h.WorkDir, "images", "rootfs"));
        Assert.Single(cached);
        var stamp = Directory.GetCreationTimeUtc(cached[0]);

        h.Launch(OciTask("c2", $"oci:{layout}:t", "exit 5"));
        var second = await h.WaitTerminalAsync("c2", TimeSpan.FromSeconds(60));
        Assert.Equal((TaskState.TaskFailed, 5), (second.State, second.ExitCode));
        Assert.Equal(stamp, Directory.GetCreationTimeUtc(Assert.Single(Directory.GetDirectories(Path.Combine(h.WorkDir, "images", "rootfs")))));
        ProcessExecutorTests.AssertNoCgroups(h);
    }

    [NeedsFact(Needs.Containers)]
    public async Task A_container_writes_to_its_persistent_volume_through_a_bind_mount_and_a_read_only_one_refuses_writes()
    {
        await using var h = new AgentHarness();
        var layout = BuildImage(h.WorkDir);
        var writer = OciTask("v1", $"oci:{layout}:t", "echo kept > /mnt/sandbox/data/file && ls -la /mnt/sandbox/data");
        writer.Resources.Add(VolumeResource("vol1", "data", Volume.Types.Mode.Rw));
        h.Launch(writer);
        var end = await h.WaitTerminalAsync("v1", TimeSpan.FromSeconds(60));
        var sandbox = Path.Combine(h.WorkDir, "sandboxes", "fw1", "v1");
        Assert.True(end.State == TaskState.TaskFinished, $"{end.State} {end.Message}; stderr: {await File.ReadAllTextAsync(Path.Combine(sandbox, "stderr"))}");
        var host = h.Core.Volumes.HostPath(VolumeResource("vol1", "data", Volume.Types.Mode.Rw));
        Assert.Equal("kept\n", await File.ReadAllTextAsync(Path.Combine(host, "file")));
        // The sandbox holds only the (now empty) mount point, not the data.
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(sandbox, "data")));

        var reader = OciTask("v2", $"oci:{layout}:t", "cat /mnt/sandbox/data/file; echo more > /mnt/sandbox/data/file2 && echo WROTE");
        reader.Resources.Add(VolumeResource("vol1", "data", Volume.Types.Mode.Ro));
        h.Launch(reader);
        var second = await h.WaitTerminalAsync("v2", TimeSpan.FromSeconds(60));
        var stdout = await File.ReadAllTextAsync(Path.Combine(h.WorkDir, "sandboxes", "fw1", "v2", "stdout"));
        Assert.Equal(TaskState.TaskFailed, second.State);
        Assert.Contains("kept", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("WROTE", stdout, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(host, "file2")));
        ProcessExecutorTests.AssertNoCgroups(h);
    }

    private static Resource VolumeResource(string id, string containerPath, Volume.Types.Mode mode) => new()
    {
        Name = "disk",
        Scalar = 16,
        Reservation = new Reservation { Type = Reservation.Types.Type.Dynamic, Role = "web" },
        Disk = new DiskInfo { Persistence = new DiskInfo.Types.Persistence { Id = id }, Volume = new Volume { ContainerPath = containerPath, Mode = mode } },
    };

    [NeedsFact(Needs.Containers)]
    public async Task Bad_images_fail_with_a_reason_and_leave_no_cache_entry()
    {
        await using var h = new AgentHarness();
        var layout = BuildImage(h.WorkDir);

        h.Launch(OciTask("unknown", "nosuchimage:1", "true"));
        var unknown = await h.WaitTerminalAsync("unknown");
        Assert.Equal((TaskState.TaskFailed, TaskStatus.Types.Reason.ImageFailed), (unknown.State, unknown.Reason));
        Assert.Contains("not in the agent's image store", unknown.Message);

        h.Launch(OciTask("tag", $"oci:{layout}:nope", "true"));
        Assert.Contains("tag 'nope' not found", (await h.WaitTerminalAsync("tag")).Message);

        // Corrupt a layer blob: its digest no longer matches.
        var corrupt = CopyLayout(layout, Path.Combine(h.WorkDir, "corrupt"));
        var layerBlob = LayerBlobs(corrupt).First();
        await File.AppendAllTextAsync(layerBlob, "tampered");
        h.Launch(OciTask("corrupt", $"oci:{corrupt}:t", "true"));
        var c = await h.WaitTerminalAsync("corrupt");
        Assert.Equal(TaskStatus.Types.Reason.ImageFailed, c.Reason);
        Assert.Contains("corrupted", c.Message);

        // A layer that plants a symlink to / and writes through it.
        var outside = Path.Combine(h.WorkDir, "outside");
        Directory.CreateDirectory(outside);
        var evil = AddLayer(CopyLayout(layout, Path.Combine(h.WorkDir, "evil")), w =>
        {
            w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "escape") { LinkName = outside });
            var file = new PaxTarEntry(TarEntryType.RegularFile, "escape/pwned") { DataStream = new MemoryStream("x"u8.ToArray()) };
            w.WriteEntry(file);
        });
        h.Launch(OciTask("evil", $"oci:{evil}:t", "true"));
        var e = await h.WaitTerminalAsync("evil");
        Assert.Equal(TaskStatus.Types.Reason.ImageFailed, e.Reason);
        Assert.Contains("symlink", e.Message);
        Assert.False(File.Exists(Path.Combine(outside, "pwned")));

        var dotdot = AddLayer(CopyLayout(layout, Path.Combine(h.WorkDir, "dotdot")), w =>
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "../../escaped") { DataStream = new MemoryStream("x"u8.ToArray()) }));
        h.Launch(OciTask("dotdot", $"oci:{dotdot}:t", "true"));
        Assert.Contains("'..'", (await h.WaitTerminalAsync("dotdot")).Message);

        h.Launch(OciTask("tiny", $"oci:{layout}:t", "true", mem: 2));
        var tiny = await h.WaitTerminalAsync("tiny");
        Assert.Equal(TaskStatus.Types.Reason.ContainerLaunchFailed, tiny.Reason);
        Assert.Contains("below", tiny.Message);

        var norun = OciTask("noruntime", $"oci:{layout}:t", "true");
        norun.Container.Oci.Runtime = "/nonexistent/runc";
        h.Launch(norun);
        var nr = await h.WaitTerminalAsync("noruntime");
        Assert.Equal(TaskStatus.Types.Reason.RuntimeUnavailable, nr.Reason);

        // None of the failures left a cache entry (no image was unpacked successfully here).
        var rootfs = Path.Combine(h.WorkDir, "images", "rootfs");
        Assert.True(!Directory.Exists(rootfs) || Directory.GetDirectories(rootfs).All(d => !d.Contains(".tmp-", StringComparison.Ordinal)));
        ProcessExecutorTests.AssertNoCgroups(h);
    }

    internal static TaskInfo OciTask(string id, string image, string shell, double mem = 64)
    {
        var t = AgentHarness.ShellTask(id, shell, mem: mem);
        t.Container = new ContainerInfo { Type = ContainerInfo.Types.Type.Oci, Oci = new OciInfo { Image = image } };
        return t;
    }

    /// <summary>Builds an OCI layout with busybox and its applet links using umoci.</summary>
    internal static string BuildImage(string work)
    {
        var layout = Path.Combine(work, "image");
        var bundle = Path.Combine(work, "image-bundle");
        AgentHarness.Run("umoci", "init", "--layout", layout);
        AgentHarness.Run("umoci", "new", "--image", layout + ":t");
        AgentHarness.Run("umoci", "unpack", "--image", layout + ":t", bundle);
        var bin = Path.Combine(bundle, "rootfs", "bin");
        Directory.CreateDirectory(bin);
        File.Copy("/bin/busybox", Path.Combine(bin, "busybox"));
        foreach (var applet in new[] { "sh", "ls", "echo", "cat", "tr", "test", "hostname", "true", "sleep", "mkfifo" })
        {
            File.CreateSymbolicLink(Path.Combine(bin, applet), "busybox");
        }
        AgentHarness.Run("umoci", "repack", "--image", layout + ":t", bundle);
        AgentHarness.Run("umoci", "config", "--image", layout + ":t", "--config.env", "PATH=/bin");
        Directory.Delete(bundle, true);
        return layout;
    }

    private static string CopyLayout(string from, string to)
    {
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        return to;
    }

    private static IEnumerable<string> LayerBlobs(string layout)
    {
        var manifest = Manifest(layout, out _);
        return manifest["layers"]!.AsArray().Select(l => Blob(layout, l!["digest"]!.GetValue<string>()));
    }

    private static string Blob(string layout, string digest) => Path.Combine(layout, "blobs", "sha256", digest["sha256:".Length..]);

    private static JsonNode Manifest(string layout, out JsonNode index)
    {
        index = JsonNode.Parse(File.ReadAllText(Path.Combine(layout, "index.json")))!;
        return JsonNode.Parse(File.ReadAllText(Blob(layout, index["manifests"]![0]!["digest"]!.GetValue<string>())))!;
    }

    /// <summary>Appends a hand-made gzip layer to the image (digests updated, so only the content is bad).</summary>
    private static string AddLayer(string layout, Action<TarWriter> write)
    {
        using var raw = new MemoryStream();
        using (var gz = new GZipStream(raw, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gz, TarEntryFormat.Pax, leaveOpen: true))
        {
            write(tar);
        }
        var layer = raw.ToArray();
        var layerDigest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(layer));
        File.WriteAllBytes(Blob(layout, layerDigest), layer);
        var manifest = Manifest(layout, out var index);
        manifest["layers"]!.AsArray().Add(new JsonObject { ["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip", ["digest"] = layerDigest, ["size"] = layer.Length });
        var bytes = System.Text.Encoding.UTF8.GetBytes(manifest.ToJsonString());
        var manifestDigest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));
        File.WriteAllBytes(Blob(layout, manifestDigest), bytes);
        index["manifests"]![0]!["digest"] = manifestDigest;
        index["manifests"]![0]!["size"] = bytes.Length;
        File.WriteAllText(Path.Combine(layout, "index.json"), index.ToJsonString());
        return layout;
    }
}
