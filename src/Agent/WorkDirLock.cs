using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Scheduler.Agent.Native;

namespace Scheduler.Agent;

/// <summary>Another agent holds the work dir; the message names it (pid) and says what to do.</summary>
public sealed class WorkDirLockedException(string message) : Exception(message);

/// <summary>
/// An exclusive lock on an agent's work dir (<c>&lt;work&gt;/LOCK</c>, an flock held for the
/// agent's lifetime and holding its pid): two agents on one work dir would re-adopt, kill and
/// garbage-collect each other's tasks. The kernel drops the lock when the agent dies, so a stale
/// file never blocks a restart.
/// </summary>
public sealed class WorkDirLock : IDisposable
{
    public const string FileName = "LOCK";

    private readonly SafeFileHandle _handle;

    private WorkDirLock(SafeFileHandle handle, string path)
    {
        _handle = handle;
        Path = path;
    }

    /// <summary>The lock file.</summary>
    public string Path { get; }

    /// <summary>Takes the lock, writing this process's pid into the file. Throws
    /// <see cref="WorkDirLockedException"/> when another process holds it, and
    /// <see cref="IOException"/>/<see cref="UnauthorizedAccessException"/> when the file cannot be
    /// opened.</summary>
    public static WorkDirLock Acquire(string workDir)
    {
        var path = System.IO.Path.Combine(System.IO.Path.GetFullPath(workDir), FileName);
        var fd = Libc.open(path, Libc.O_RDWR | Libc.O_CREAT | Libc.O_CLOEXEC, Convert.ToInt32("644", 8));
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            var why = $"cannot open the agent's lock file {path}: {Marshal.GetPInvokeErrorMessage(errno)}";
            throw errno is 13 or 1 ? new UnauthorizedAccessException(why) : new IOException(why);
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (Libc.flock(handle, Libc.LOCK_EX | Libc.LOCK_NB) != 0)
        {
            var holder = ReadPid(handle);
            handle.Dispose();
            throw new WorkDirLockedException(
                $"the work dir {workDir} is in use by another agent ({(holder is null ? "its pid is not recorded" : $"pid {holder}")}, holding {path}); " +
                "each agent needs its own --work-dir: stop that agent or choose another directory");
        }
        var pid = Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
        _ = Libc.ftruncate(handle, 0);
        RandomAccess.Write(handle, pid, 0);
        return new WorkDirLock(handle, path);
    }

    public void Dispose() => _handle.Dispose();

    private static string? ReadPid(SafeFileHandle handle)
    {
        var buffer = new byte[32];
        var read = RandomAccess.Read(handle, buffer, 0);
        var text = Encoding.ASCII.GetString(buffer, 0, read).Trim();
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out _) ? text : null;
    }
}
