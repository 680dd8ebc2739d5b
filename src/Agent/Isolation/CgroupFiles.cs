using System.Globalization;
using Scheduler.Agent.Native;

namespace Scheduler.Agent.Isolation;

/// <summary>Small helpers for reading and writing cgroup control files.</summary>
internal static class CgroupFiles
{
    public static void Write(string dir, string file, string value)
    {
        var path = Path.Combine(dir, file);
        try
        {
            File.WriteAllText(path, value);
        }
        catch (IOException e)
        {
            throw new IsolationException($"cannot write '{value}' to {path}: {e.Message}", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new IsolationException($"cannot write {path} (the agent must run as root for cgroups isolation): {e.Message}", e);
        }
    }

    public static string? Read(string dir, string file)
    {
        try
        {
            return File.ReadAllText(Path.Combine(dir, file));
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    public static ulong ReadULong(string dir, string file)
    {
        var text = Read(dir, file)?.Trim();
        return text is not null && ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : 0;
    }

    /// <summary>The value of a <c>key value</c> line in a flat-keyed file (cpu.stat, memory.events).</summary>
    public static ulong ReadKey(string dir, string file, string key)
    {
        var text = Read(dir, file);
        if (text is null)
        {
            return 0;
        }
        foreach (var line in text.Split('\n'))
        {
            var space = line.IndexOf(' ');
            if (space > 0 && line.AsSpan(0, space).SequenceEqual(key) && ulong.TryParse(line.AsSpan(space + 1).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var v))
            {
                return v;
            }
        }
        return 0;
    }

    public static List<int> ReadPids(string dir)
    {
        var text = Read(dir, "cgroup.procs");
        var pids = new List<int>();
        if (text is null)
        {
            return pids;
        }
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                pids.Add(pid);
            }
        }
        return pids;
    }

    /// <summary>Removes an (empty) cgroup directory, retrying briefly while the kernel still
    /// counts exiting processes.</summary>
    public static void RemoveDir(string dir)
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            if (!Directory.Exists(dir) || Libc.rmdir(dir) == 0)
            {
                return;
            }
            Thread.Sleep(10);
        }
        throw new IsolationException($"cannot remove cgroup {dir}: still busy after 2 s");
    }

    /// <summary>Waits (bounded) until a cgroup has no processes.</summary>
    /// <summary>
    /// Creates a cgroup directory and its missing parents. Another agent removing the shared
    /// <c>sched</c> parent at that moment (it does when its own scope was the last) makes a
    /// component vanish between two mkdirs: the creation is then simply tried again.
    /// </summary>
    public static void EnsureDirectory(string dir)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                Directory.CreateDirectory(dir);
                return;
            }
            catch (DirectoryNotFoundException) when (attempt < 5)
            {
            }
        }
    }

    /// <summary>
    /// Removes an agent's scope <c>MOUNT/sched/SCOPE</c> when it holds no container, then the shared
    /// <c>MOUNT/sched</c> when no other agent's scope is left in it (rmdir refuses a non-empty
    /// cgroup, so a scope another agent is using is never touched).
    /// </summary>
    public static void RemoveScope(string mount, string scope)
    {
        var parent = Path.Combine(mount, "sched");
        var dir = Path.Combine(parent, scope);
        if (Directory.Exists(dir) && !Directory.EnumerateDirectories(dir).Any())
        {
            _ = Libc.rmdir(dir);
        }
        if (Directory.Exists(parent) && !Directory.EnumerateDirectories(parent).Any())
        {
            _ = Libc.rmdir(parent);
        }
    }

    public static bool WaitEmpty(string dir, TimeSpan timeout)
    {
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (Environment.TickCount64 < deadline)
        {
            if (!Directory.Exists(dir) || ReadPids(dir).Count == 0)
            {
                return true;
            }
            Thread.Sleep(5);
        }
        return false;
    }

    /// <summary>Mount points of cgroup hierarchies from /proc/self/mountinfo: v1 controller → dir,
    /// and the cgroup2 mount (if any).</summary>
    public static (Dictionary<string, string> V1, string? V2) Mounts()
    {
        var v1 = new Dictionary<string, string>(StringComparer.Ordinal);
        string? v2 = null;
        string[] lines;
        try
        {
            lines = File.ReadAllLines("/proc/self/mountinfo");
        }
        catch (IOException)
        {
            return (v1, null);
        }
        foreach (var line in lines)
        {
            var sep = line.IndexOf(" - ", StringComparison.Ordinal);
            if (sep < 0)
            {
                continue;
            }
            var left = line[..sep].Split(' ');
            var right = line[(sep + 3)..].Split(' ');
            if (left.Length < 5 || right.Length < 3)
            {
                continue;
            }
            var mountPoint = left[4];
            if (right[0] == "cgroup2")
            {
                v2 ??= mountPoint;
            }
            else if (right[0] == "cgroup")
            {
                foreach (var opt in right[2].Split(','))
                {
                    if (opt is "cpu" or "cpuacct" or "memory" or "pids" or "freezer")
                    {
                        v1.TryAdd(opt, mountPoint);
                    }
                }
            }
        }
        return (v1, v2);
    }
}
