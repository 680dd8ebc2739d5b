using System.Globalization;

namespace Scheduler.Agent.Native;

/// <summary>Reads process facts from <c>/proc</c>.</summary>
public static class ProcFs
{
    /// <summary>The kernel's boot id; changes on every reboot ("" when unavailable).</summary>
    public static string BootId()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();
        }
        catch (IOException)
        {
            return "";
        }
        catch (UnauthorizedAccessException)
        {
            return "";
        }
    }

    /// <summary>
    /// The start time of a process (clock ticks since boot, field 22 of <c>/proc/PID/stat</c>),
    /// its parent (field 4) and whether it is still alive (exists and is not a zombie). Null when
    /// it does not exist.
    /// </summary>
    public static ProcessStat? Stat(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
        // The command name (field 2) is in parentheses and may contain spaces: parse after it.
        var close = text.LastIndexOf(')');
        if (close < 0)
        {
            return null;
        }
        if (close + 2 >= text.Length)
        {
            return null;
        }
        var fields = text[(close + 2)..].Split(' ');
        // fields[0] is field 3 (state), fields[1] field 4 (ppid), fields[19] field 22 (start time).
        if (fields.Length < 20
            || !int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var ppid)
            || !ulong.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var start))
        {
            return null;
        }
        return new ProcessStat(start, ppid, fields[0] is not ("Z" or "X" or "x"));
    }

    /// <summary>True when the process exists, is not a zombie, and started at <paramref name="startTime"/>.</summary>
    public static bool IsAlive(int pid, ulong startTime)
    {
        var s = Stat(pid);
        return s is { Alive: true } && s.Value.StartTime == startTime;
    }
}

/// <summary>What <see cref="ProcFs.Stat"/> reads of a process.</summary>
/// <param name="StartTime">Clock ticks since boot at which it started (with the pid, its identity).</param>
/// <param name="ParentPid">Its parent's pid.</param>
/// <param name="Alive">It exists and is not a zombie.</param>
public readonly record struct ProcessStat(ulong StartTime, int ParentPid, bool Alive);
