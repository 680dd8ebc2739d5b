using Sched.V1;
using Scheduler.Agent.Native;

namespace Scheduler.Agent.Execution;

/// <summary>
/// What a process task may do with its sandbox: its working directory must be inside it, and
/// when the agent runs as root the sandbox belongs to the task's user (Mesos does the same), so a
/// task running as <c>nobody</c> can write its own files and other users cannot read them.
/// </summary>
public static class TaskSandbox
{
    /// <summary>The user a process task runs as: <c>command.user</c>, else the framework's user;
    /// null for the agent's own user.</summary>
    public static string? UserOf(CommandInfo command, FrameworkInfo framework)
        => !string.IsNullOrEmpty(command.User) ? command.User : string.IsNullOrEmpty(framework.User) ? null : framework.User;

    /// <summary>
    /// The absolute working directory for <paramref name="requested"/> (relative to the sandbox;
    /// empty: the sandbox itself). Throws a TASK_ERROR <see cref="TaskLaunchException"/> for an
    /// absolute path or one that leaves the sandbox, lexically or through a symbolic link.
    /// </summary>
    public static string WorkingDirectory(string sandbox, string requested)
    {
        if (string.IsNullOrEmpty(requested))
        {
            return sandbox;
        }
        var root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(sandbox));
        var full = Path.IsPathRooted(requested) ? null : Path.GetFullPath(Path.Combine(root, requested));
        if (full is null || !IsWithin(root, full))
        {
            throw Outside(requested);
        }
        if (Libc.RealPath(full) is { } real && Libc.RealPath(root) is { } realRoot && !IsWithin(realRoot, real))
        {
            throw Outside(requested);
        }
        return full;
    }

    /// <summary>
    /// Gives the sandbox (and what was fetched into it, and the task's <c>stdout</c> and
    /// <c>stderr</c>, created now) to <paramref name="user"/> with mode 0750, when the agent is
    /// root and the user is another one. Symbolic links are changed, never followed. An unknown
    /// user is left to the supervisor, which reports it.
    /// </summary>
    public static void GiveTo(string sandbox, string? user, IEnumerable<string> outputFiles)
    {
        if (OperatingSystem.IsWindows() || string.IsNullOrEmpty(user) || user == "root" || Libc.geteuid() != 0 || Libc.User(user) is not { } owner)
        {
            return;
        }
        foreach (var file in outputFiles)
        {
            using (new FileStream(file, FileMode.Append, FileAccess.Write))
            {
            }
        }
        Chown(sandbox, owner.Uid, owner.Gid);
        File.SetUnixFileMode(sandbox, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
    }

    private static void Chown(string path, uint uid, uint gid)
    {
        if (Libc.lchown(path, uid, gid) != 0)
        {
            throw new TaskLaunchException(TaskStatus.Types.Reason.SandboxFailed,
                $"cannot give {path} to the task's user (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}); check the agent's work dir filesystem");
        }
        var info = new DirectoryInfo(path);
        if (!info.Attributes.HasFlag(FileAttributes.Directory) || info.LinkTarget is not null)
        {
            return;
        }
        foreach (var entry in info.EnumerateFileSystemInfos())
        {
            Chown(entry.FullName, uid, gid);
        }
    }

    private static bool IsWithin(string root, string path) => path == root || path.StartsWith(root + "/", StringComparison.Ordinal);

    private static TaskLaunchException Outside(string requested)
        => new(TaskStatus.Types.Reason.TaskInvalid,
            $"command.working_dir '{requested}' is outside the task's sandbox; give a path relative to the sandbox (e.g. 'data') or leave it empty",
            TaskState.TaskError);
}
