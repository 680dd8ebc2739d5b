using Microsoft.Win32.SafeHandles;
using Scheduler.Agent.Native;

namespace Scheduler.Agent.Files;

/// <summary>Why a sandbox path was refused.</summary>
public enum SandboxRefusal
{
    /// <summary>Nothing is there (or it vanished while being opened).</summary>
    NotFound,

    /// <summary>Absolute, <c>..</c>, or a symbolic link on the way: the agent never follows one.</summary>
    Denied,

    /// <summary>The request is malformed (a directory where a file is needed, an empty name …).</summary>
    InvalidPath,

    /// <summary>It exists but is not a regular file or directory (FIFO, socket, device).</summary>
    NotServable,
}

/// <summary>A sandbox path was refused; the message says what was wrong and what to do.</summary>
public sealed class SandboxAccessException(SandboxRefusal refusal, string message) : Exception(message)
{
    public SandboxRefusal Refusal { get; } = refusal;
}

/// <summary>An entry of a sandbox directory (as listed).</summary>
public sealed record SandboxEntry(string Name, bool IsDirectory, long Size, uint Permissions, double MtimeSeconds);

/// <summary>
/// Read-only access to the files under an agent's sandboxes root, safe against what tasks do in
/// their sandboxes while they are read. Paths are relative to the root and opened relative to it
/// without following any symbolic link (<see cref="BeneathOpen"/>): a task that swaps a directory
/// for a link to <c>/etc</c> between a check and the open cannot make the agent (root) read host
/// files, because nothing is checked by path — what was opened is inspected. Only regular files
/// are read and only directories listed; a FIFO, socket or device is refused without blocking or
/// touching it (<c>O_PATH</c>, then a non-blocking reopen).
/// </summary>
/// <param name="root">The sandboxes root (trusted; it may itself be reached through links).</param>
/// <param name="allowOpenat2">False forces the component-by-component walk used where the kernel
/// has no <c>openat2</c>.</param>
/// <param name="description">What the root is, for messages.</param>
public sealed class SandboxDirectory(string root, bool allowOpenat2 = true, string description = "the agent's sandboxes")
{
    /// <summary>Opens a regular file for reading. Throws <see cref="SandboxAccessException"/>.</summary>
    public SafeFileHandle OpenFile(string relative)
    {
        using var path = OpenPath(relative, out var facts);
        if (facts.IsDirectory)
        {
            throw new SandboxAccessException(SandboxRefusal.InvalidPath, $"'{relative}' is a directory; list it (ListFiles / schedctl files) or name a file in it");
        }
        if (!facts.IsRegular)
        {
            throw NotServable(relative, facts);
        }
        var (handle, errno) = BeneathOpen.Reopen(path, directory: false);
        if (handle is null)
        {
            throw Refused(relative, errno);
        }
        if (BeneathOpen.Stat(handle) is not { IsRegular: true } opened || opened.Inode != facts.Inode)
        {
            handle.Dispose();
            throw new SandboxAccessException(SandboxRefusal.NotFound, $"'{relative}' changed while it was being opened; try again");
        }
        return handle;
    }

    /// <summary>What is at <paramref name="relative"/>: a file's own entry, or a directory's
    /// entries sorted by name. Throws <see cref="SandboxAccessException"/>.</summary>
    public (bool IsDirectory, IReadOnlyList<SandboxEntry> Entries) List(string relative)
    {
        using var path = OpenPath(relative, out var facts);
        if (!facts.IsDirectory)
        {
            if (!facts.IsRegular)
            {
                throw NotServable(relative, facts);
            }
            return (false, [new SandboxEntry(relative, false, facts.Size, facts.Permissions, facts.MtimeSeconds)]);
        }
        var (dir, errno) = BeneathOpen.Reopen(path, directory: true);
        if (dir is null)
        {
            throw Refused(relative, errno);
        }
        using (dir)
        {
            var entries = new List<SandboxEntry>();
            // The names come from the directory that was opened (its /proc/self/fd entry), and each
            // is described relative to that descriptor without following links.
            foreach (var name in Directory.EnumerateFileSystemEntries($"/proc/self/fd/{dir.DangerousGetHandle()}").Select(Path.GetFileName))
            {
                if (name is { Length: > 0 } && BeneathOpen.StatEntry(dir, name) is { } e)
                {
                    entries.Add(new SandboxEntry(name, e.IsDirectory, e.IsRegular ? e.Size : 0, e.Permissions, e.MtimeSeconds));
                }
            }
            entries.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
            return (true, entries);
        }
    }

    /// <summary>Whether an open file has been removed from its directory (no links left).</summary>
    public static bool IsUnlinked(SafeFileHandle file) => BeneathOpen.Stat(file) is not { Links: > 0 };

    private SafeFileHandle OpenPath(string relative, out FileFacts facts)
    {
        var components = Split(relative);
        var (rootHandle, rootErrno) = BeneathOpen.OpenDirectory(root);
        if (rootHandle is null)
        {
            throw new SandboxAccessException(SandboxRefusal.NotFound,
                rootErrno == BeneathOpen.ENOENT ? $"{root} ({description}) does not exist" : $"the agent cannot open {description} (errno {rootErrno}); see the agent's log");
        }
        using (rootHandle)
        {
            var (handle, errno) = BeneathOpen.Open(rootHandle, components, allowOpenat2);
            if (handle is null)
            {
                throw Refused(relative, errno);
            }
            if (BeneathOpen.Stat(handle) is not { } f)
            {
                handle.Dispose();
                throw new SandboxAccessException(SandboxRefusal.NotFound, $"'{relative}' vanished while it was being opened; try again");
            }
            facts = f;
            return handle;
        }
    }

    private List<string> Split(string? relative)
    {
        relative ??= "";
        if (relative.StartsWith('/') || relative.Contains('\0', StringComparison.Ordinal))
        {
            throw new SandboxAccessException(SandboxRefusal.Denied, $"access to '{relative}' denied: absolute paths are not allowed; name a path relative to {description}");
        }
        var parts = relative.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToList();
        if (parts.Contains(".."))
        {
            throw new SandboxAccessException(SandboxRefusal.Denied, $"access to '{relative}' denied: '..' is not allowed");
        }
        return parts;
    }

    private static SandboxAccessException NotServable(string relative, FileFacts facts)
        => new(SandboxRefusal.NotServable, $"'{relative}' is {facts.Kind}, not a regular file; the agent serves only regular files and directories");

    private SandboxAccessException Refused(string relative, int errno) => errno switch
    {
        BeneathOpen.ENOENT => new(SandboxRefusal.NotFound, $"'{relative}' does not exist in {description}"),
        BeneathOpen.ELOOP or BeneathOpen.EXDEV => new(SandboxRefusal.Denied,
            $"access to '{relative}' denied: it goes through a symbolic link, and the agent follows none in {description}; name the file the link points to"),
        BeneathOpen.ENOTDIR => new(SandboxRefusal.NotFound, $"'{relative}' does not exist in {description} (a part of the path is not a directory)"),
        BeneathOpen.EACCES or BeneathOpen.EPERM => new(SandboxRefusal.Denied, $"access to '{relative}' denied by its permissions"),
        BeneathOpen.EAGAIN => new(SandboxRefusal.NotFound, $"'{relative}' changed while it was being opened; try again"),
        _ => new(SandboxRefusal.InvalidPath, $"'{relative}' cannot be opened (errno {errno})"),
    };
}
