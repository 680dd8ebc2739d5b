using System.Formats.Tar;
using System.IO.Compression;

namespace Scheduler.Agent.Images;

/// <summary>
/// Applies OCI image layers (tar, optionally gzip) onto a root directory, in order, with
/// whiteouts (<c>.wh.NAME</c> deletes NAME; <c>.wh..wh..opq</c> empties the directory). Unsafe
/// content is refused with <see cref="ImageException"/>: absolute or <c>..</c> paths, writes
/// through symlinks, hard links leaving the root, device nodes, and more than the size cap.
/// </summary>
public sealed class LayerUnpacker(string root, long maxTotalBytes)
{
    private long _total;

    public void Apply(Stream layer, bool gzip)
    {
        using var input = gzip ? new GZipStream(layer, CompressionMode.Decompress, leaveOpen: true) : layer;
        using var reader = new TarReader(input, leaveOpen: true);
        while (reader.GetNextEntry() is { } entry)
        {
            ApplyEntry(entry);
        }
    }

    private void ApplyEntry(TarEntry entry)
    {
        var relative = Normalize(entry.Name);
        if (relative.Length == 0)
        {
            return;
        }
        var name = Path.GetFileName(relative);
        var parentRel = Path.GetDirectoryName(relative) ?? "";
        var parent = SafeDirectory(parentRel, create: true);
        if (name == ".wh..wh..opq")
        {
            foreach (var child in new DirectoryInfo(parent).EnumerateFileSystemInfos())
            {
                Remove(child.FullName);
            }
            return;
        }
        if (name.StartsWith(".wh.", StringComparison.Ordinal))
        {
            Remove(Path.Combine(parent, name[4..]));
            return;
        }
        var target = Path.Combine(parent, name);
        switch (entry.EntryType)
        {
            case TarEntryType.Directory:
                if (File.Exists(target) || IsSymlink(target))
                {
                    Remove(target);
                }
                Directory.CreateDirectory(target);
                SetMode(target, entry.Mode);
                break;
            case TarEntryType.RegularFile:
            case TarEntryType.V7RegularFile:
            case TarEntryType.ContiguousFile:
                _total += entry.Length;
                if (_total > maxTotalBytes)
                {
                    throw new ImageException($"the image is larger than the limit of {maxTotalBytes / 1048576} MiB when unpacked");
                }
                Remove(target);
                using (var file = new FileStream(target, FileMode.CreateNew, FileAccess.Write))
                {
                    entry.DataStream?.CopyTo(file);
                }
                SetMode(target, entry.Mode);
                break;
            case TarEntryType.SymbolicLink:
                CheckLinkTarget(parentRel, entry.LinkName, relative);
                Remove(target);
                File.CreateSymbolicLink(target, entry.LinkName);
                break;
            case TarEntryType.HardLink:
                var linkRel = Normalize(entry.LinkName);
                var source = Path.Combine(SafeDirectory(Path.GetDirectoryName(linkRel) ?? "", create: false), Path.GetFileName(linkRel));
                if (!File.Exists(source) || IsSymlink(source))
                {
                    throw new ImageException($"layer entry '{entry.Name}' is a hard link to '{entry.LinkName}', which is not a file in the image");
                }
                Remove(target);
                File.Copy(source, target);
                break;
            case TarEntryType.CharacterDevice:
            case TarEntryType.BlockDevice:
                throw new ImageException($"layer entry '{entry.Name}' is a device node; images may not carry devices");
            default:
                // FIFOs, pax/GNU metadata and other entries carry nothing a task needs.
                break;
        }
    }

    /// <summary>The entry's path relative to the root; refuses absolute paths and '..'.</summary>
    private static string Normalize(string name)
    {
        var n = name.Replace('\\', '/');
        while (n.StartsWith("./", StringComparison.Ordinal))
        {
            n = n[2..];
        }
        if (n.StartsWith('/'))
        {
            throw new ImageException($"layer entry '{name}' has an absolute path; layers must use relative paths");
        }
        var parts = n.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToList();
        if (parts.Contains(".."))
        {
            throw new ImageException($"layer entry '{name}' contains '..' and would escape the image root");
        }
        return string.Join('/', parts);
    }

    /// <summary>The directory for a relative path, never passing through a symlink (so a layer
    /// cannot write outside the root via a link planted earlier).</summary>
    private string SafeDirectory(string relative, bool create)
    {
        var current = root;
        foreach (var part in relative.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            current = Path.Combine(current, part);
            if (IsSymlink(current))
            {
                throw new ImageException($"layer path '{relative}' goes through the symlink '{part}'; refusing to write through links");
            }
            if (!Directory.Exists(current))
            {
                if (!create)
                {
                    throw new ImageException($"layer path '{relative}' does not exist");
                }
                if (File.Exists(current))
                {
                    File.Delete(current);
                }
                Directory.CreateDirectory(current);
            }
        }
        return current;
    }

    /// <summary>Relative symlink targets must stay inside the root (absolute ones are resolved by
    /// the runtime inside the container root, and are never followed while unpacking).</summary>
    private static void CheckLinkTarget(string parentRel, string linkName, string entryName)
    {
        if (linkName.StartsWith('/'))
        {
            return;
        }
        var depth = parentRel.Split('/', StringSplitOptions.RemoveEmptyEntries).Length;
        foreach (var part in linkName.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            depth += part switch { ".." => -1, "." => 0, _ => 1 };
            if (depth < 0)
            {
                throw new ImageException($"layer symlink '{entryName}' -> '{linkName}' points outside the image root");
            }
        }
    }

    private static void SetMode(string path, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, mode);
        }
    }

    // readlink on the path itself: true for links to files, directories or nothing.
    private static bool IsSymlink(string path) => new FileInfo(path).LinkTarget is not null;

    private static void Remove(string path)
    {
        if (IsSymlink(path) || File.Exists(path))
        {
            File.Delete(path);
        }
        else if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
    }
}

/// <summary>An image could not be resolved, verified or unpacked.</summary>
public sealed class ImageException(string message, Exception? inner = null) : Exception(message, inner);
