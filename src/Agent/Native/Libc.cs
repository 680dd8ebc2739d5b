using System.Runtime.InteropServices;

namespace Scheduler.Agent.Native;

/// <summary>
/// The few libc calls the agent needs that .NET does not expose: sessions, signals to process
/// groups, rmdir, realpath, execv.
/// </summary>
internal static partial class Libc
{
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;

    public const int ESRCH = 3;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int getsid(int pid);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int kill(int pid, int sig);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int rmdir(string path);

    [LibraryImport("libc", EntryPoint = "realpath", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr RealPathNative(string path, IntPtr resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void Free(IntPtr p);

    /// <summary>The canonical absolute path (symlinks resolved), or null when it does not exist.</summary>
    public static string? RealPath(string path)
    {
        var p = RealPathNative(path, IntPtr.Zero);
        if (p == IntPtr.Zero)
        {
            return null;
        }
        try
        {
            return Marshal.PtrToStringUTF8(p);
        }
        finally
        {
            Free(p);
        }
    }

    [LibraryImport("libc")]
    public static partial uint geteuid();

    public const ulong MS_NOSUID = 2;
    public const ulong MS_NODEV = 4;
    public const ulong MS_NOEXEC = 8;
    public const int MNT_DETACH = 2;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mount(string source, string target, string fstype, ulong flags, string data);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int umount2(string target, int flags);

    [LibraryImport("libc", EntryPoint = "execv", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ExecV(string path, IntPtr argv);

    /// <summary>Replaces this process with <paramref name="path"/> (execv).</summary>
    /// <returns>Only on failure: the errno.</returns>
    public static int Exec(string path, IReadOnlyList<string> argv)
    {
        var allocations = new List<IntPtr>();
        try
        {
            _ = ExecV(path, ToNullTerminatedArray(argv, allocations));
            return Marshal.GetLastPInvokeError();
        }
        finally
        {
            foreach (var p in allocations)
            {
                Marshal.FreeCoTaskMem(p);
            }
        }
    }

    private static IntPtr ToNullTerminatedArray(IReadOnlyList<string> items, List<IntPtr> allocations)
    {
        var array = Marshal.AllocCoTaskMem(IntPtr.Size * (items.Count + 1));
        allocations.Add(array);
        for (var i = 0; i < items.Count; i++)
        {
            var s = Marshal.StringToCoTaskMemUTF8(items[i]);
            allocations.Add(s);
            Marshal.WriteIntPtr(array, i * IntPtr.Size, s);
        }
        Marshal.WriteIntPtr(array, items.Count * IntPtr.Size, IntPtr.Zero);
        return array;
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int lchown(string path, uint owner, uint group);

    [LibraryImport("libc", EntryPoint = "getpwnam_r", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int GetPwNamR(string name, byte* pwd, byte* buffer, nuint size, byte** result);

    /// <summary>The uid and gid of a user (getpwnam_r), or null when there is no such user.</summary>
    public static unsafe (uint Uid, uint Gid)? User(string name)
    {
        // struct passwd on 64-bit Linux: pw_name, pw_passwd (pointers), pw_uid @16, pw_gid @20, …
        var pwd = stackalloc byte[64];
        var buffer = new byte[16384];
        byte* result = null;
        fixed (byte* b = buffer)
        {
            if (GetPwNamR(name, pwd, b, (nuint)buffer.Length, &result) != 0 || result == null)
            {
                return null;
            }
            return (*(uint*)(pwd + 16), *(uint*)(pwd + 20));
        }
    }

    public const int O_RDWR = 2;
    public const int O_CREAT = 0x40;
    public const int O_CLOEXEC = 0x80000;
    public const int LOCK_EX = 2;
    public const int LOCK_NB = 4;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int flock(Microsoft.Win32.SafeHandles.SafeFileHandle fd, int operation);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int ftruncate(Microsoft.Win32.SafeHandles.SafeFileHandle fd, long length);
}
