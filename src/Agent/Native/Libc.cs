using System.Runtime.InteropServices;

namespace Scheduler.Agent.Native;

/// <summary>
/// The few libc calls the agent and its supervisors need that .NET does not expose: sessions,
/// process groups, signals to groups, and <c>posix_spawn</c> (safe to call from a multi-threaded
/// runtime, unlike <c>fork</c>).
/// </summary>
internal static partial class Libc
{
    public const int SIGHUP = 1;
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;
    public const int SIGCONT = 18;

    public const int ESRCH = 3;
    public const int EINTR = 4;
    public const int ECHILD = 10;

    public const int O_RDONLY = 0;
    public const int O_WRONLY = 1;
    public const int O_CREAT = 0x40;
    public const int O_APPEND = 0x400;

    public const short POSIX_SPAWN_SETSIGDEF = 0x04;
    public const short POSIX_SPAWN_SETSIGMASK = 0x08;
    public const short POSIX_SPAWN_SETSID = 0x80;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int setsid();

    [LibraryImport("libc", SetLastError = true)]
    public static partial int getsid(int pid);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int kill(int pid, int sig);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int waitpid(int pid, out int status, int options);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags, int mode);

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

    [LibraryImport("libc", SetLastError = true)]
    public static partial int dup2(int oldfd, int newfd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc")]
    public static partial uint geteuid();

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_init")]
    public static partial int FileActionsInit(IntPtr actions);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_destroy")]
    public static partial int FileActionsDestroy(IntPtr actions);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_addopen", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int FileActionsAddOpen(IntPtr actions, int fd, string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_addchdir_np", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int FileActionsAddChdir(IntPtr actions, string path);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_init")]
    public static partial int AttrInit(IntPtr attr);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_destroy")]
    public static partial int AttrDestroy(IntPtr attr);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setflags")]
    public static partial int AttrSetFlags(IntPtr attr, short flags);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setsigmask")]
    public static partial int AttrSetSigMask(IntPtr attr, IntPtr sigset);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setsigdefault")]
    public static partial int AttrSetSigDefault(IntPtr attr, IntPtr sigset);

    [LibraryImport("libc", EntryPoint = "sigemptyset")]
    public static partial int SigEmptySet(IntPtr set);

    [LibraryImport("libc", EntryPoint = "sigfillset")]
    public static partial int SigFillSet(IntPtr set);

    [LibraryImport("libc", EntryPoint = "posix_spawn")]
    public static partial int PosixSpawn(out int pid, IntPtr path, IntPtr fileActions, IntPtr attr, IntPtr argv, IntPtr envp);

    public static bool WIfExited(int status) => (status & 0x7f) == 0;

    public static int WExitStatus(int status) => (status >> 8) & 0xff;

    public static bool WIfSignaled(int status) => (status & 0x7f) != 0 && (status & 0x7f) != 0x7f;

    public static int WTermSig(int status) => status & 0x7f;

    /// <summary>
    /// Starts <paramref name="argv"/>[0] (an absolute path) in a new session with stdin from
    /// /dev/null, stdout/stderr appended to the given files, the given working directory and
    /// environment, every signal at its default disposition and none blocked.
    /// </summary>
    /// <returns>The child's pid.</returns>
    /// <exception cref="IOException">posix_spawn failed (errno in the message).</exception>
    public static int SpawnInNewSession(IReadOnlyList<string> argv, IReadOnlyList<string> env, string workingDir, string stdoutPath, string stderrPath)
    {
        // glibc's posix_spawn_file_actions_t is 80 bytes and posix_spawnattr_t 336; over-allocate.
        var actions = Marshal.AllocHGlobal(512);
        var attr = Marshal.AllocHGlobal(1024);
        var sigset = Marshal.AllocHGlobal(256);
        var allocations = new List<IntPtr>();
        try
        {
            Check(FileActionsInit(actions), "FileActionsInit");
            Check(AttrInit(attr), "AttrInit");
            Check(FileActionsAddOpen(actions, 0, "/dev/null", O_RDONLY, 0), "FileActionsAddOpen");
            Check(FileActionsAddOpen(actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_APPEND, 0x1a4), "FileActionsAddOpen");
            Check(FileActionsAddOpen(actions, 2, stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0x1a4), "FileActionsAddOpen");
            Check(FileActionsAddChdir(actions, workingDir), "FileActionsAddChdir");
            Check(AttrSetFlags(attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF), "AttrSetFlags");
            Check(SigEmptySet(sigset), "SigEmptySet");
            Check(AttrSetSigMask(attr, sigset), "AttrSetSigMask");
            Check(SigFillSet(sigset), "SigFillSet");
            Check(AttrSetSigDefault(attr, sigset), "AttrSetSigDefault");

            var argvPtr = ToNullTerminatedArray(argv, allocations);
            var envPtr = ToNullTerminatedArray(env, allocations);
            var path = Marshal.StringToCoTaskMemUTF8(argv[0]);
            allocations.Add(path);
            var rc = PosixSpawn(out var pid, path, actions, attr, argvPtr, envPtr);
            if (rc != 0)
            {
                throw new IOException($"posix_spawn of {argv[0]} failed: {Marshal.GetPInvokeErrorMessage(rc)} (errno {rc})");
            }
            return pid;
        }
        finally
        {
            _ = FileActionsDestroy(actions);
            _ = AttrDestroy(attr);
            foreach (var p in allocations)
            {
                Marshal.FreeCoTaskMem(p);
            }
            Marshal.FreeHGlobal(actions);
            Marshal.FreeHGlobal(attr);
            Marshal.FreeHGlobal(sigset);
        }
    }

    private static void Check(int rc, string what)
    {
        if (rc != 0)
        {
            throw new IOException($"{what} failed (error {rc})");
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
}
