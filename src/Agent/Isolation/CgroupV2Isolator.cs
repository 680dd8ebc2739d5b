using System.Globalization;
using Sched.V1;
using Scheduler.Agent.Native;

namespace Scheduler.Agent.Isolation;

/// <summary>
/// cgroups v2 (unified hierarchy): <c>&lt;mount&gt;/sched/&lt;scope&gt;/&lt;container&gt;</c> with
/// cpu.weight + cpu.max, memory.max (swap off) with <c>memory.events</c> oom_kill, pids.max; kills
/// use <c>cgroup.kill</c> (falling back to freeze + SIGKILL on kernels before 5.14).
/// </summary>
public sealed class CgroupV2Isolator : IIsolator
{
    private static readonly string[] Needed = ["cpu", "memory", "pids"];

    private readonly string _mount;
    private readonly string _scope;

    private CgroupV2Isolator(string mount, string scope)
    {
        _mount = mount;
        _scope = scope;
    }

    public string Name => "cgroups-v2";

    /// <summary>The v2 isolator when a unified hierarchy with cpu, memory and pids is mounted.</summary>
    public static CgroupV2Isolator? TryCreate(string scope)
    {
        var (_, v2) = CgroupFiles.Mounts();
        if (v2 is null)
        {
            return null;
        }
        var controllers = (CgroupFiles.Read(v2, "cgroup.controllers") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return Needed.All(controllers.Contains) ? new CgroupV2Isolator(v2, scope) : null;
    }

    public IContainerCgroup? Create(string containerId, ContainerLimits limits)
    {
        var dir = Path.Combine(EnsureScope(), containerId);
        try
        {
            CgroupFiles.EnsureDirectory(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IsolationException($"cannot create cgroup {dir}: {e.Message}", e);
        }
        var c = new Container(dir, containerId);
        try
        {
            if (limits.Cpus > 0)
            {
                var weight = Math.Clamp((long)Math.Round(limits.Cpus * 100), 1, 10000);
                CgroupFiles.Write(dir, "cpu.weight", weight.ToString(CultureInfo.InvariantCulture));
                var quota = Math.Max(1000, (long)Math.Round(limits.Cpus * 100000));
                CgroupFiles.Write(dir, "cpu.max", $"{quota} 100000");
            }
            if (limits.MemBytes > 0)
            {
                CgroupFiles.Write(dir, "memory.max", limits.MemBytes.ToString(CultureInfo.InvariantCulture));
                if (File.Exists(Path.Combine(dir, "memory.swap.max")))
                {
                    CgroupFiles.Write(dir, "memory.swap.max", "0");
                }
            }
            if (limits.Pids > 0)
            {
                CgroupFiles.Write(dir, "pids.max", limits.Pids.ToString(CultureInfo.InvariantCulture));
            }
            return c;
        }
        catch
        {
            c.Destroy();
            throw;
        }
    }

    public IContainerCgroup? Open(string containerId)
    {
        var dir = Path.Combine(_mount, "sched", _scope, containerId);
        return Directory.Exists(dir) ? new Container(dir, containerId) : null;
    }

    public string? RuntimeCgroupsPath(string containerId)
    {
        // As for v1: the scope exists (with its controllers enabled) before the runtime nests in it.
        EnsureScope();
        return $"/sched/{_scope}/{containerId}";
    }

    /// <summary>Creates <c>sched/SCOPE</c> with the controllers delegated down to it; returns its path.</summary>
    private string EnsureScope()
    {
        var sched = Path.Combine(_mount, "sched");
        var scope = Path.Combine(sched, _scope);
        try
        {
            EnableControllers(_mount);
            CgroupFiles.EnsureDirectory(sched);
            EnableControllers(sched);
            CgroupFiles.EnsureDirectory(scope);
            EnableControllers(scope);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IsolationException($"cannot create cgroup {scope}: {e.Message}", e);
        }
        return scope;
    }

    public CgroupLayout Layout(string containerId)
    {
        var dir = Path.Combine(_mount, "sched", _scope, containerId);
        return new CgroupLayout("v2", [Path.Combine(dir, "cgroup.procs")], new Dictionary<string, string> { ["unified"] = dir }, [dir]);
    }

    public IReadOnlyList<string> RemoveStale(IReadOnlySet<string> keep)
    {
        var parent = Path.Combine(_mount, "sched", _scope);
        if (!Directory.Exists(parent))
        {
            return [];
        }
        var removed = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories(parent))
        {
            var id = Path.GetFileName(dir);
            if (!keep.Contains(id))
            {
                new Container(dir, id).Destroy();
                removed.Add(id);
            }
        }
        return removed;
    }

    public void RemoveScopeIfEmpty()
    {
        CgroupFiles.RemoveScope(_mount, _scope);
    }

    private static void EnableControllers(string dir)
    {
        var enabled = (CgroupFiles.Read(dir, "cgroup.subtree_control") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var c in Needed.Where(c => !enabled.Contains(c)))
        {
            CgroupFiles.Write(dir, "cgroup.subtree_control", "+" + c);
        }
    }

    private sealed class Container(string dir, string id) : IContainerCgroup
    {
        public string Id { get; } = id;

        public IReadOnlyList<string> ProcsFiles { get; } = [Path.Combine(dir, "cgroup.procs")];

        public IReadOnlyList<int> Pids() => CgroupFiles.ReadPids(dir);

        public uint OomKills() => (uint)CgroupFiles.ReadKey(dir, "memory.events", "oom_kill");

        public ResourceStatistics Statistics()
        {
            var max = (CgroupFiles.Read(dir, "cpu.max") ?? "max").Trim().Split(' ');
            var memMax = (CgroupFiles.Read(dir, "memory.max") ?? "max").Trim();
            return new ResourceStatistics
            {
                Timestamp = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0,
                CpuUserSeconds = CgroupFiles.ReadKey(dir, "cpu.stat", "user_usec") / 1e6,
                CpuSystemSeconds = CgroupFiles.ReadKey(dir, "cpu.stat", "system_usec") / 1e6,
                MemBytes = CgroupFiles.ReadULong(dir, "memory.current"),
                MemPeakBytes = CgroupFiles.ReadULong(dir, "memory.peak"),
                MemLimitBytes = ulong.TryParse(memMax, CultureInfo.InvariantCulture, out var m) ? m : 0,
                CpuLimit = max.Length == 2 && double.TryParse(max[0], CultureInfo.InvariantCulture, out var q) && double.TryParse(max[1], CultureInfo.InvariantCulture, out var p) && p > 0 ? q / p : 0,
                Processes = (uint)CgroupFiles.ReadULong(dir, "pids.current"),
                CpuThrottledPeriods = CgroupFiles.ReadKey(dir, "cpu.stat", "nr_throttled"),
                CpuThrottledSeconds = CgroupFiles.ReadKey(dir, "cpu.stat", "throttled_usec") / 1e6,
                OomKills = OomKills(),
            };
        }

        public void KillAll()
        {
            if (!Directory.Exists(dir))
            {
                return;
            }
            if (File.Exists(Path.Combine(dir, "cgroup.kill")))
            {
                File.WriteAllText(Path.Combine(dir, "cgroup.kill"), "1");
                CgroupFiles.WaitEmpty(dir, TimeSpan.FromSeconds(5));
                return;
            }
            for (var round = 0; round < 50 && CgroupFiles.ReadPids(dir).Count > 0; round++)
            {
                File.WriteAllText(Path.Combine(dir, "cgroup.freeze"), "1");
                foreach (var pid in CgroupFiles.ReadPids(dir))
                {
                    Libc.kill(pid, Libc.SIGKILL);
                }
                File.WriteAllText(Path.Combine(dir, "cgroup.freeze"), "0");
                CgroupFiles.WaitEmpty(dir, TimeSpan.FromMilliseconds(200));
            }
        }

        public void Destroy()
        {
            KillAll();
            CgroupFiles.RemoveDir(dir);
        }
    }
}
