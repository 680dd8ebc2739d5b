using System.Globalization;
using Sched.V1;
using Scheduler.Agent.Native;

namespace Scheduler.Agent.Isolation;

/// <summary>
/// cgroups v1: one directory per controller (cpu, cpuacct, memory, pids, freezer) at
/// <c>&lt;mount&gt;/sched/&lt;scope&gt;/&lt;container&gt;</c>. CPU: shares (1024 per core) and CFS quota;
/// memory: limit (and memsw when swap accounting exists) with the OOM killer on; pids.max; kills
/// freeze the container first so no process can fork while being killed.
/// </summary>
public sealed class CgroupV1Isolator : IIsolator
{
    public static readonly string[] Controllers = ["cpu", "cpuacct", "memory", "pids", "freezer"];

    private readonly Dictionary<string, string> _mounts;
    private readonly string _scope;
    private readonly Lazy<List<string>> _hierarchies = new(() => AllHierarchies().ToList());

    private CgroupV1Isolator(Dictionary<string, string> mounts, string scope)
    {
        _mounts = mounts;
        _scope = scope;
    }

    public string Name => "cgroups-v1";

    /// <summary>The v1 isolator when every needed controller is mounted, else null.</summary>
    public static CgroupV1Isolator? TryCreate(string scope)
    {
        var (v1, _) = CgroupFiles.Mounts();
        return Controllers.All(v1.ContainsKey) ? new CgroupV1Isolator(v1, scope) : null;
    }

    public IContainerCgroup? Create(string containerId, ContainerLimits limits)
    {
        var cgroup = new Container(this, containerId);
        try
        {
            foreach (var dir in cgroup.Dirs.Values.Distinct())
            {
                CgroupFiles.EnsureDirectory(dir);
            }
            var cpu = cgroup.Dirs["cpu"];
            if (limits.Cpus > 0)
            {
                var shares = Math.Max(2, (long)Math.Round(limits.Cpus * 1024));
                CgroupFiles.Write(cpu, "cpu.shares", shares.ToString(CultureInfo.InvariantCulture));
                CgroupFiles.Write(cpu, "cpu.cfs_period_us", "100000");
                var quota = Math.Max(1000, (long)Math.Round(limits.Cpus * 100000));
                CgroupFiles.Write(cpu, "cpu.cfs_quota_us", quota.ToString(CultureInfo.InvariantCulture));
            }
            var mem = cgroup.Dirs["memory"];
            if (limits.MemBytes > 0)
            {
                var bytes = limits.MemBytes.ToString(CultureInfo.InvariantCulture);
                CgroupFiles.Write(mem, "memory.limit_in_bytes", bytes);
                if (File.Exists(Path.Combine(mem, "memory.memsw.limit_in_bytes")))
                {
                    // Without this the task would swap instead of hitting its limit.
                    CgroupFiles.Write(mem, "memory.memsw.limit_in_bytes", bytes);
                }
            }
            if (limits.Pids > 0)
            {
                CgroupFiles.Write(cgroup.Dirs["pids"], "pids.max", limits.Pids.ToString(CultureInfo.InvariantCulture));
            }
            return cgroup;
        }
        catch (Exception e)
        {
            cgroup.Destroy();
            throw e as IsolationException ?? new IsolationException($"cannot create cgroups for container {containerId}: {e.Message}", e);
        }
    }

    public IContainerCgroup? Open(string containerId)
    {
        var c = new Container(this, containerId);
        return c.Dirs.Values.Any(Directory.Exists) ? c : null;
    }

    public string? RuntimeCgroupsPath(string containerId)
    {
        // The agent's scope exists in every hierarchy before the runtime creates the container's
        // cgroup in it, so the runtime never creates (or races the removal of) shared parents.
        foreach (var hierarchy in _hierarchies.Value)
        {
            CgroupFiles.EnsureDirectory(Path.Combine(hierarchy, "sched", _scope));
        }
        return $"/sched/{_scope}/{containerId}";
    }

    public CgroupLayout Layout(string containerId)
    {
        var c = new Container(this, containerId);
        var relative = Path.Combine("sched", _scope, containerId);
        var remove = c.Dirs.Values.Concat(_hierarchies.Value.Select(h => Path.Combine(h, relative))).Distinct(StringComparer.Ordinal).ToList();
        return new CgroupLayout("v1", c.ProcsFiles, new Dictionary<string, string>
        {
            ["freezer"] = c.Dirs["freezer"],
            ["memory"] = c.Dirs["memory"],
            ["cpuacct"] = c.Dirs["cpuacct"],
        }, remove);
    }

    public IReadOnlyList<string> RemoveStale(IReadOnlySet<string> keep)
    {
        var stale = new HashSet<string>(StringComparer.Ordinal);
        foreach (var controller in Controllers)
        {
            var parent = Path.Combine(_mounts[controller], "sched", _scope);
            if (!Directory.Exists(parent))
            {
                continue;
            }
            foreach (var dir in Directory.EnumerateDirectories(parent))
            {
                var id = Path.GetFileName(dir);
                if (!keep.Contains(id))
                {
                    stale.Add(id);
                }
            }
        }
        foreach (var id in stale)
        {
            new Container(this, id).Destroy();
        }
        return [.. stale];
    }

    public void RemoveScopeIfEmpty()
    {
        foreach (var mount in AllHierarchies().Distinct())
        {
            CgroupFiles.RemoveScope(mount, _scope);
        }
    }

    /// <summary>Every mounted cgroup hierarchy (OCI runtimes also create the container's cgroup in
    /// blkio, devices, cpuset, name=systemd, the unified mount…).</summary>
    private static IEnumerable<string> AllHierarchies()
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines("/proc/self/mountinfo");
        }
        catch (IOException)
        {
            yield break;
        }
        foreach (var line in lines)
        {
            var sep = line.IndexOf(" - ", StringComparison.Ordinal);
            var left = line.Split(' ');
            if (sep > 0 && left.Length > 4 && line[(sep + 3)..].StartsWith("cgroup", StringComparison.Ordinal))
            {
                yield return left[4];
            }
        }
    }

    private sealed class Container : IContainerCgroup
    {
        public Container(CgroupV1Isolator owner, string id)
        {
            Id = id;
            Dirs = Controllers.ToDictionary(c => c, c => Path.Combine(owner._mounts[c], "sched", owner._scope, id), StringComparer.Ordinal);
            ProcsFiles = Dirs.Values.Distinct().Select(d => Path.Combine(d, "cgroup.procs")).ToList();
        }

        public string Id { get; }

        public Dictionary<string, string> Dirs { get; }

        public IReadOnlyList<string> ProcsFiles { get; }

        public IReadOnlyList<int> Pids() => CgroupFiles.ReadPids(Dirs["freezer"]);

        public uint OomKills() => (uint)CgroupFiles.ReadKey(Dirs["memory"], "memory.oom_control", "oom_kill");

        public ResourceStatistics Statistics()
        {
            var cpuacct = Dirs["cpuacct"];
            var mem = Dirs["memory"];
            var cpu = Dirs["cpu"];
            var (user, sys) = CpuSeconds(cpuacct);
            var quota = (CgroupFiles.Read(cpu, "cpu.cfs_quota_us") ?? "-1").Trim();
            var period = CgroupFiles.ReadULong(cpu, "cpu.cfs_period_us");
            var limit = CgroupFiles.ReadULong(mem, "memory.limit_in_bytes");
            return new ResourceStatistics
            {
                Timestamp = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0,
                CpuUserSeconds = user,
                CpuSystemSeconds = sys,
                MemBytes = CgroupFiles.ReadULong(mem, "memory.usage_in_bytes"),
                MemPeakBytes = CgroupFiles.ReadULong(mem, "memory.max_usage_in_bytes"),
                MemLimitBytes = limit >= long.MaxValue / 2 ? 0 : limit,
                CpuLimit = long.TryParse(quota, CultureInfo.InvariantCulture, out var q) && q > 0 && period > 0 ? (double)q / period : 0,
                Processes = (uint)CgroupFiles.ReadULong(Dirs["pids"], "pids.current"),
                CpuThrottledPeriods = CgroupFiles.ReadKey(cpu, "cpu.stat", "nr_throttled"),
                CpuThrottledSeconds = CgroupFiles.ReadKey(cpu, "cpu.stat", "throttled_time") / 1e9,
                OomKills = OomKills(),
            };
        }

        /// <summary>User and system CPU seconds. cpuacct.usage (nanoseconds, exact) is the total;
        /// usage_user/usage_sys are sampled at scheduler ticks, which a task throttled by its CFS
        /// quota can skew by several percent, so they only give the split (as the kernel's
        /// cputime_adjust does for /proc).</summary>
        private static (double User, double Sys) CpuSeconds(string cpuacct)
        {
            var total = CgroupFiles.ReadULong(cpuacct, "cpuacct.usage") / 1e9;
            var user = (double)CgroupFiles.ReadULong(cpuacct, "cpuacct.usage_user");
            var sys = (double)CgroupFiles.ReadULong(cpuacct, "cpuacct.usage_sys");
            return user + sys <= 0 ? (total, 0) : (total * user / (user + sys), total * sys / (user + sys));
        }

        public void KillAll()
        {
            var freezer = Dirs["freezer"];
            if (!Directory.Exists(freezer))
            {
                return;
            }
            for (var round = 0; round < 50; round++)
            {
                var pids = CgroupFiles.ReadPids(freezer);
                if (pids.Count == 0)
                {
                    return;
                }
                // Freeze so nothing forks between reading the list and killing it; SIGKILL is
                // delivered once the group is thawed.
                TryWrite(freezer, "freezer.state", "FROZEN");
                WaitFrozen(freezer);
                foreach (var pid in CgroupFiles.ReadPids(freezer))
                {
                    Libc.kill(pid, Libc.SIGKILL);
                }
                TryWrite(freezer, "freezer.state", "THAWED");
                if (CgroupFiles.WaitEmpty(freezer, TimeSpan.FromMilliseconds(200)))
                {
                    return;
                }
            }
        }

        public void Destroy()
        {
            KillAll();
            foreach (var dir in Dirs.Values.Distinct())
            {
                // A process may sit in one hierarchy and not in the freezer (e.g. a supervisor
                // moved only for accounting): kill whatever is still listed before removing it.
                if (Directory.Exists(dir))
                {
                    foreach (var pid in CgroupFiles.ReadPids(dir))
                    {
                        Libc.kill(pid, Libc.SIGKILL);
                    }
                    CgroupFiles.WaitEmpty(dir, TimeSpan.FromSeconds(2));
                }
                CgroupFiles.RemoveDir(dir);
            }
            foreach (var hierarchy in AllHierarchies())
            {
                var extra = Path.Combine(hierarchy, Path.GetRelativePath(Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(Dirs["memory"])!)!)!, Dirs["memory"]));
                if (Directory.Exists(extra))
                {
                    _ = Libc.rmdir(extra);
                }
            }
        }

        private static void WaitFrozen(string freezer)
        {
            for (var i = 0; i < 200; i++)
            {
                if ((CgroupFiles.Read(freezer, "freezer.state") ?? "").Trim() != "FREEZING")
                {
                    return;
                }
                Thread.Sleep(1);
            }
        }

        private static void TryWrite(string dir, string file, string value)
        {
            try
            {
                File.WriteAllText(Path.Combine(dir, file), value);
            }
            catch (IOException)
            {
            }
        }
    }
}
