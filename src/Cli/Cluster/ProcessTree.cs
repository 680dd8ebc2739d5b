using System.Globalization;
using System.Runtime.InteropServices;
using Scheduler.Agent.Native;

namespace Scheduler.Cli.Cluster;

/// <summary>A process named by pid and start time (clock ticks since boot), so that a recycled pid
/// is never mistaken for it.</summary>
public readonly record struct ProcessIdentity(int Pid, ulong StartTime);

/// <summary>
/// Processes found by parentage from a pid this program started, never by name or command line.
/// Used to stop a local cluster's agents together with everything they started (task supervisors,
/// pooled or not, and their tasks), which leave the agent's process group and session by design.
/// </summary>
public static partial class ProcessTree
{
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;
    public const int SIGCONT = 18;
    public const int SIGSTOP = 19;

    /// <summary>
    /// Stops (SIGSTOP) the roots and all their descendants, repeating until no new descendant
    /// appears: a stopped process cannot fork, so the set returned is complete and stays so until
    /// it is continued. Roots that are gone (or whose start time differs) are left out.
    /// </summary>
    public static HashSet<ProcessIdentity> Freeze(IEnumerable<ProcessIdentity> roots)
    {
        var frozen = new HashSet<ProcessIdentity>();
        var frozenPids = new HashSet<int>();
        var pending = roots.ToList();
        while (true)
        {
            foreach (var p in pending)
            {
                if (IsSame(p) && frozen.Add(p))
                {
                    frozenPids.Add(p.Pid);
                    _ = kill(p.Pid, SIGSTOP);
                }
            }
            var table = Snapshot();
            pending = table
                .Where(e => e.Alive && !frozen.Contains(e.Id) && frozenPids.Contains(e.ParentPid))
                .Select(e => e.Id)
                .ToList();
            if (pending.Count == 0)
            {
                return frozen;
            }
        }
    }

    /// <summary>The identity of a live process, or null when it does not exist or is a zombie.</summary>
    public static ProcessIdentity? Identify(int pid)
        => Read(pid) is { Alive: true } e ? e.Id : null;

    /// <summary>Sends <paramref name="signal"/> to each process that is still the same process.</summary>
    public static void Signal(IEnumerable<ProcessIdentity> processes, int signal)
    {
        foreach (var p in processes)
        {
            if (IsSame(p))
            {
                _ = kill(p.Pid, signal);
            }
        }
    }

    /// <summary>Whether the process is alive (not a zombie) and is the one identified.</summary>
    public static bool IsSame(ProcessIdentity p) => Read(p.Pid) is { Alive: true } e && e.Id.StartTime == p.StartTime;

    /// <summary>Waits until none of the processes is alive; returns those left after the timeout.</summary>
    public static async Task<List<ProcessIdentity>> WaitGoneAsync(IEnumerable<ProcessIdentity> processes, TimeSpan timeout)
    {
        var left = processes.Where(IsSame).ToList();
        var until = DateTime.UtcNow + timeout;
        while (left.Count > 0 && DateTime.UtcNow < until)
        {
            await Task.Delay(50);
            left = left.Where(IsSame).ToList();
        }
        return left;
    }

    private readonly record struct Entry(ProcessIdentity Id, int ParentPid, bool Alive);

    private static List<Entry> Snapshot()
    {
        var list = new List<Entry>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && Read(pid) is { } e)
            {
                list.Add(e);
            }
        }
        return list;
    }

    private static Entry? Read(int pid)
        => ProcFs.Stat(pid) is { } stat ? new Entry(new ProcessIdentity(pid, stat.StartTime), stat.ParentPid, stat.Alive) : null;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);
}
