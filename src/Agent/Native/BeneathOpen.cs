using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Scheduler.Agent.Native;

/// <summary>What <c>statx</c> says of an open file descriptor or a directory entry.</summary>
internal readonly record struct FileFacts(uint Type, uint Permissions, long Size, ulong Inode, uint Links, double MtimeSeconds)
{
    public const uint TypeMask = 0xF000;
    public const uint Regular = 0x8000;
    public const uint Directory = 0x4000;
    public const uint SymbolicLink = 0xA000;
    public const uint Fifo = 0x1000;
    public const uint Socket = 0xC000;
    public const uint CharDevice = 0x2000;
    public const uint BlockDevice = 0x6000;

    public bool IsRegular => Type == Regular;

    public bool IsDirectory => Type == Directory;

    /// <summary>"a FIFO", "a symbolic link", … for messages.</summary>
    public string Kind => Type switch
    {
        Regular => "a regular file",
        Directory => "a directory",
        SymbolicLink => "a symbolic link",
        Fifo => "a FIFO (named pipe)",
        Socket => "a socket",
        CharDevice => "a character device",
        BlockDevice => "a block device",
        _ => "a special file",
    };
}

/// <summary>
/// Opens a path relative to a directory without ever following a symbolic link or leaving the
/// directory: <c>openat2</c> with <c>RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS</c>
/// (Linux 5.6+), or, where the kernel lacks it (ENOSYS), a walk that opens one component at a
/// time with <c>O_NOFOLLOW</c> and checks each is a directory. Every open is <c>O_PATH</c>: it
/// cannot block (FIFOs) or have side effects (devices); the caller inspects what was opened with
/// <see cref="Stat(SafeFileHandle)"/> and only then reopens it for reading.
/// </summary>
internal static unsafe partial class BeneathOpen
{
    public const int ENOENT = 2;
    public const int EACCES = 13;
    public const int EXDEV = 18;
    public const int ENOTDIR = 20;
    public const int EINVAL = 22;
    public const int ENOSYS = 38;
    public const int ELOOP = 40;
    public const int EPERM = 1;
    public const int EAGAIN = 11;

    private const long SysOpenat2 = 437; // the same number on every architecture (added in 5.6)
    private const ulong ResolveNoMagicLinks = 0x02;
    private const ulong ResolveNoSymlinks = 0x04;
    private const ulong ResolveBeneath = 0x08;
    private const int AtEmptyPath = 0x1000;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7FF;

    private const int ORdOnly = 0;
    private const int ONoCtty = 0x100;
    private const int ONonBlock = 0x800;
    private const int OCloExec = 0x80000;
    private const int OPath = 0x200000;
    private static readonly bool Arm = RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm;
    private static readonly int ODirectory = Arm ? 0x4000 : 0x10000;
    private static readonly int ONoFollow = Arm ? 0x8000 : 0x20000;

    private static volatile bool _openat2Missing;

    [StructLayout(LayoutKind.Sequential)]
    private struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    /// <summary>Opens a directory by its (trusted) absolute path, as <c>O_PATH</c>.</summary>
    /// <returns>The handle, or the errno.</returns>
    public static (SafeFileHandle? Handle, int Errno) OpenDirectory(string path)
    {
        var fd = open(path, OPath | ODirectory | OCloExec);
        return fd < 0 ? (null, Marshal.GetLastPInvokeError()) : (new SafeFileHandle(fd, ownsHandle: true), 0);
    }

    /// <summary>
    /// Opens <paramref name="components"/> (names without <c>/</c>, <c>.</c> or <c>..</c>) below
    /// <paramref name="directory"/> as <c>O_PATH</c>, following no symbolic link.
    /// </summary>
    /// <param name="allowOpenat2">False forces the component walk (for tests of the fallback).</param>
    /// <returns>The handle, or the errno: ELOOP/EXDEV for a symbolic link on the way, ENOTDIR for
    /// a component that is not a directory, ENOENT.</returns>
    public static (SafeFileHandle? Handle, int Errno) Open(SafeFileHandle directory, IReadOnlyList<string> components, bool allowOpenat2 = true)
    {
        if (components.Count == 0)
        {
            var self = openat(directory, ".", OPath | ODirectory | OCloExec);
            return self < 0 ? (null, Marshal.GetLastPInvokeError()) : (new SafeFileHandle(self, ownsHandle: true), 0);
        }
        if (allowOpenat2 && !_openat2Missing)
        {
            var how = new OpenHow { Flags = (ulong)(OPath | OCloExec), Resolve = ResolveBeneath | ResolveNoSymlinks | ResolveNoMagicLinks };
            var fd = (int)openat2(SysOpenat2, directory.DangerousGetHandle(), string.Join('/', components), &how, (nuint)sizeof(OpenHow));
            GC.KeepAlive(directory);
            if (fd >= 0)
            {
                return (new SafeFileHandle(fd, ownsHandle: true), 0);
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno != ENOSYS)
            {
                return (null, errno);
            }
            _openat2Missing = true;
        }
        return Walk(directory, components);
    }

    private static (SafeFileHandle? Handle, int Errno) Walk(SafeFileHandle directory, IReadOnlyList<string> components)
    {
        SafeFileHandle? current = null;
        try
        {
            for (var i = 0; i < components.Count; i++)
            {
                var fd = openat(current ?? directory, components[i], OPath | ONoFollow | OCloExec);
                if (fd < 0)
                {
                    return (null, Marshal.GetLastPInvokeError());
                }
                var next = new SafeFileHandle(fd, ownsHandle: true);
                current?.Dispose();
                current = next;
                var facts = Stat(current);
                if (facts is null || facts.Value.Type == FileFacts.SymbolicLink)
                {
                    return (null, ELOOP);
                }
                if (i < components.Count - 1 && !facts.Value.IsDirectory)
                {
                    return (null, ENOTDIR);
                }
            }
            var result = current;
            current = null;
            return (result, 0);
        }
        finally
        {
            current?.Dispose();
        }
    }

    /// <summary>
    /// Reopens an <c>O_PATH</c> handle for reading, non-blocking, through its
    /// <c>/proc/self/fd</c> entry (which names the very file opened, not a path that could have
    /// changed since). For directories pass <paramref name="directory"/>.
    /// </summary>
    public static (SafeFileHandle? Handle, int Errno) Reopen(SafeFileHandle pathHandle, bool directory)
    {
        var flags = ORdOnly | ONonBlock | ONoCtty | OCloExec | (directory ? ODirectory : 0);
        var fd = open($"/proc/self/fd/{pathHandle.DangerousGetHandle()}", flags);
        return fd < 0 ? (null, Marshal.GetLastPInvokeError()) : (new SafeFileHandle(fd, ownsHandle: true), 0);
    }

    /// <summary><c>statx</c> of an open descriptor (null if it fails).</summary>
    public static FileFacts? Stat(SafeFileHandle handle) => Statx(handle, "", AtEmptyPath);

    /// <summary><c>statx</c> of an entry of an open directory, not following a symbolic link.</summary>
    public static FileFacts? StatEntry(SafeFileHandle directory, string name) => Statx(directory, name, AtSymlinkNoFollow);

    private static FileFacts? Statx(SafeFileHandle handle, string name, int flags)
    {
        var buffer = stackalloc byte[256];
        if (statx(handle, name, flags, StatxBasicStats, buffer) != 0)
        {
            return null;
        }
        // struct statx: stx_nlink @16 (u32), stx_mode @28 (u16), stx_ino @32, stx_size @40,
        // stx_mtime @112 (i64 seconds, u32 nanoseconds).
        var mode = *(ushort*)(buffer + 28);
        return new FileFacts(
            (uint)mode & FileFacts.TypeMask,
            (uint)mode & 0xFFF,
            *(long*)(buffer + 40),
            *(ulong*)(buffer + 32),
            *(uint*)(buffer + 16),
            *(long*)(buffer + 112) + (*(uint*)(buffer + 120) / 1e9));
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial long openat2(long number, nint dirfd, string path, OpenHow* how, nuint size);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int openat(SafeFileHandle dirfd, string path, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statx(SafeFileHandle dirfd, string path, int flags, uint mask, byte* buffer);
}
