using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace Scheduler.Agent.Images;

/// <summary>An unpacked image: its root filesystem (shared, read-only) and its config.</summary>
public sealed record ImageRootfs(string ManifestDigest, string RootfsDir, List<string> Entrypoint, List<string> Cmd, List<string> Env, string WorkingDir, string User);

/// <summary>
/// Resolves image references — <c>oci:DIR:TAG</c>, <c>oci-archive:FILE:TAG</c> (OCI image
/// layouts as umoci/skopeo write them) and <c>NAME:TAG</c> from <c>&lt;work&gt;/images/NAME</c> — follows
/// index → manifest → config → layers verifying every sha256 digest, and unpacks the layers into a
/// cache keyed by manifest digest (<c>&lt;work&gt;/images/rootfs/&lt;digest&gt;</c>). Unpacking happens in a
/// temp dir renamed into place, so a failure never leaves a partial cache entry.
/// </summary>
public sealed class ImageStore(string imagesDir, long maxImageBytes)
{
    private readonly SemaphoreSlim _lock = new(1, 1);

    public async Task<ImageRootfs> PullAsync(string reference, CancellationToken cancellationToken)
    {
        var (layout, tag, cleanup) = Locate(reference);
        try
        {
            await _lock.WaitAsync(cancellationToken);
            try
            {
                return Resolve(layout, tag, reference);
            }
            finally
            {
                _lock.Release();
            }
        }
        finally
        {
            cleanup?.Invoke();
        }
    }

    private (string Layout, string Tag, Action? Cleanup) Locate(string reference)
    {
        if (reference.StartsWith("oci:", StringComparison.Ordinal))
        {
            var (dir, tag) = SplitTag(reference[4..]);
            if (!Directory.Exists(dir))
            {
                throw new ImageException($"image '{reference}': no OCI layout directory at {dir}");
            }
            return (dir, tag, null);
        }
        if (reference.StartsWith("oci-archive:", StringComparison.Ordinal))
        {
            var (file, tag) = SplitTag(reference["oci-archive:".Length..]);
            if (!File.Exists(file))
            {
                throw new ImageException($"image '{reference}': no archive at {file}");
            }
            var tmp = Path.Combine(imagesDir, "tmp", Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(tmp);
            try
            {
                using var stream = File.OpenRead(file);
                new LayerUnpacker(tmp, maxImageBytes).Apply(stream, gzip: false);
            }
            catch
            {
                Directory.Delete(tmp, true);
                throw;
            }
            return (tmp, tag, () => Directory.Delete(tmp, true));
        }
        var (name, t) = SplitTag(reference);
        if (name.Length == 0 || name.Contains("..", StringComparison.Ordinal) || name.StartsWith('/'))
        {
            throw new ImageException($"image '{reference}' is not oci:DIR:TAG, oci-archive:FILE:TAG or NAME:TAG");
        }
        var local = Path.Combine(imagesDir, name);
        if (!Directory.Exists(local))
        {
            throw new ImageException($"image '{reference}' is not in the agent's image store ({local}); import it or use oci:DIR:TAG");
        }
        return (local, t, null);
    }

    private static (string Path, string Tag) SplitTag(string text)
    {
        var colon = text.LastIndexOf(':');
        return colon > 0 && !text[(colon + 1)..].Contains('/', StringComparison.Ordinal) ? (text[..colon], text[(colon + 1)..]) : (text, "latest");
    }

    private ImageRootfs Resolve(string layout, string tag, string reference)
    {
        var index = ReadJson(Path.Combine(layout, "index.json"), reference);
        var manifests = index["manifests"]?.AsArray() ?? throw new ImageException($"image '{reference}': index.json has no manifests");
        var descriptor = manifests.FirstOrDefault(m => m?["annotations"]?["org.opencontainers.image.ref.name"]?.GetValue<string>() == tag)
            ?? throw new ImageException($"image '{reference}': tag '{tag}' not found in {Path.Combine(layout, "index.json")}");
        var manifestDigest = descriptor["digest"]!.GetValue<string>();
        var manifest = JsonNode.Parse(ReadBlob(layout, manifestDigest, reference))!;
        var configDigest = manifest["config"]?["digest"]?.GetValue<string>() ?? throw new ImageException($"image '{reference}': manifest has no config");
        var config = JsonNode.Parse(ReadBlob(layout, configDigest, reference))!;
        var imageConfig = config["config"];

        var rootfsDir = Path.Combine(imagesDir, "rootfs", manifestDigest.Replace(':', '-'));
        if (!Directory.Exists(rootfsDir))
        {
            var tmp = rootfsDir + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
            var rootfs = Path.Combine(tmp, "rootfs");
            Directory.CreateDirectory(rootfs);
            try
            {
                var unpacker = new LayerUnpacker(rootfs, maxImageBytes);
                foreach (var layer in manifest["layers"]?.AsArray() ?? [])
                {
                    var digest = layer!["digest"]!.GetValue<string>();
                    var mediaType = layer["mediaType"]?.GetValue<string>() ?? "";
                    var path = BlobPath(layout, digest, reference);
                    VerifyDigest(path, digest, reference);
                    using var stream = File.OpenRead(path);
                    unpacker.Apply(stream, gzip: mediaType.EndsWith("+gzip", StringComparison.Ordinal) || mediaType.EndsWith(".gzip", StringComparison.Ordinal));
                }
                foreach (var dir in new[] { "proc", "dev", "sys", "tmp", "mnt/sandbox" })
                {
                    Directory.CreateDirectory(Path.Combine(rootfs, dir));
                }
                Directory.Move(tmp, rootfsDir);
            }
            catch (Exception e)
            {
                Directory.Delete(tmp, true);
                throw e as ImageException ?? new ImageException($"image '{reference}': cannot unpack: {e.Message}", e);
            }
        }
        return new ImageRootfs(
            manifestDigest,
            Path.Combine(rootfsDir, "rootfs"),
            Strings(imageConfig?["Entrypoint"]),
            Strings(imageConfig?["Cmd"]),
            Strings(imageConfig?["Env"]),
            imageConfig?["WorkingDir"]?.GetValue<string>() ?? "",
            imageConfig?["User"]?.GetValue<string>() ?? "");
    }

    private static List<string> Strings(JsonNode? node) => node is JsonArray a ? a.Select(x => x!.GetValue<string>()).ToList() : [];

    private static JsonNode ReadJson(string path, string reference)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllBytes(path)) ?? throw new ImageException($"image '{reference}': {path} is empty");
        }
        catch (IOException e)
        {
            throw new ImageException($"image '{reference}': cannot read {path}: {e.Message}", e);
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new ImageException($"image '{reference}': {path} is not valid JSON: {e.Message}", e);
        }
    }

    private static byte[] ReadBlob(string layout, string digest, string reference)
    {
        var path = BlobPath(layout, digest, reference);
        VerifyDigest(path, digest, reference);
        return File.ReadAllBytes(path);
    }

    private static string BlobPath(string layout, string digest, string reference)
    {
        var parts = digest.Split(':');
        if (parts.Length != 2 || parts[0] != "sha256" || parts[1].Length != 64 || !parts[1].All(Uri.IsHexDigit))
        {
            throw new ImageException($"image '{reference}': unsupported digest '{digest}' (only sha256)");
        }
        var path = Path.Combine(layout, "blobs", "sha256", parts[1]);
        if (!File.Exists(path))
        {
            throw new ImageException($"image '{reference}': blob {digest} is missing from the layout");
        }
        return path;
    }

    private static void VerifyDigest(string path, string digest, string reference)
    {
        using var stream = File.OpenRead(path);
        var actual = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(stream));
        if (actual != digest)
        {
            throw new ImageException($"image '{reference}': blob {digest} is corrupted (its content hashes to {actual}); re-pull or rebuild the image");
        }
    }
}
