using System.Runtime.InteropServices;
using Scheduler.Agent.Native;

namespace Scheduler.Agent.Execution;

/// <summary>
/// A task's file secrets: <c>SANDBOX/.secrets/NAME</c>, mode 0400, on a small tmpfs mounted for
/// the task (when the agent runs as root; otherwise a 0700 directory on the sandbox's own file
/// system), so the values never reach the disk. Removed (unmounted) when the task ends.
/// </summary>
internal static class SecretFiles
{
    public const string DirectoryName = ".secrets";

    /// <summary>Writes the file secrets among <paramref name="values"/>; nothing when there are none.</summary>
    /// <exception cref="IOException">When the directory cannot be made or mounted.</exception>
    public static void Place(string sandbox, IEnumerable<Sched.V1.SecretValue> values)
    {
        var files = values.Where(v => v.File.Length > 0).ToList();
        if (files.Count == 0 || OperatingSystem.IsWindows())
        {
            return;
        }
        var dir = Path.Combine(sandbox, DirectoryName);
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (Libc.geteuid() == 0 && !IsMountPoint(dir))
        {
            var size = Math.Max(64 * 1024, files.Sum(f => f.Value.Length) * 2);
            if (Libc.mount("tmpfs", dir, "tmpfs", Libc.MS_NOSUID | Libc.MS_NODEV | Libc.MS_NOEXEC, $"size={size},mode=0700") != 0)
            {
                throw new IOException($"cannot mount a tmpfs for the task's secret files at {dir}: errno {Marshal.GetLastPInvokeError()}");
            }
        }
        foreach (var secret in files)
        {
            var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead };
            using var file = new FileStream(Path.Combine(dir, secret.File), options);
            file.Write(secret.Value.Span);
        }
    }

    /// <summary>Removes the task's secret files (unmounting their tmpfs); nothing when there are none.</summary>
    public static void Remove(string sandbox)
    {
        var dir = Path.Combine(sandbox, DirectoryName);
        if (!Directory.Exists(dir))
        {
            return;
        }
        if (IsMountPoint(dir))
        {
            Libc.umount2(dir, Libc.MNT_DETACH);
        }
        Directory.Delete(dir, recursive: true);
    }

    private static bool IsMountPoint(string dir)
    {
        var full = Path.GetFullPath(dir);
        try
        {
            // Field 5 of mountinfo is the mount point (spaces escaped as \040).
            return File.ReadLines("/proc/self/mountinfo")
                .Select(l => l.Split(' '))
                .Any(f => f.Length > 4 && f[4].Replace("\\040", " ", StringComparison.Ordinal) == full);
        }
        catch (IOException)
        {
            return false;
        }
    }
}
