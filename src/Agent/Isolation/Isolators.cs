using System.Security.Cryptography;
using System.Text;
using Scheduler.Agent.Native;

namespace Scheduler.Agent.Isolation;

/// <summary>Chooses the isolator at runtime.</summary>
public static class Isolators
{
    /// <summary>
    /// <c>auto</c>: cgroups v1 when all its controllers are mounted (hybrid hosts), else v2 when
    /// the unified hierarchy has cpu/memory/pids, else none; only as root. <c>cgroups</c>: the
    /// same but failing when neither works. <c>none</c>: no isolation.
    /// </summary>
    public static IIsolator Create(string mode, string scope)
    {
        if (mode == "none")
        {
            return new NoIsolator();
        }
        if (Libc.geteuid() == 0)
        {
            var found = (IIsolator?)CgroupV1Isolator.TryCreate(scope) ?? CgroupV2Isolator.TryCreate(scope);
            if (found is not null)
            {
                return found;
            }
        }
        if (mode == "cgroups")
        {
            throw new IsolationException(Libc.geteuid() != 0
                ? "cgroups isolation needs root: run the agent as root or pass --isolation none"
                : "no usable cgroup hierarchy: need v1 cpu,cpuacct,memory,pids,freezer or v2 with cpu,memory,pids");
        }
        return new NoIsolator();
    }

    /// <summary>The isolator a supervisor uses for a container the agent created (by name).</summary>
    public static IIsolator ByName(string name, string scope) => name switch
    {
        "cgroups-v1" => CgroupV1Isolator.TryCreate(scope) ?? throw new IsolationException("cgroups v1 controllers are not mounted"),
        "cgroups-v2" => CgroupV2Isolator.TryCreate(scope) ?? throw new IsolationException("cgroups v2 is not mounted with cpu, memory, pids"),
        _ => new NoIsolator(),
    };

    /// <summary>The scope (cgroup directory under <c>sched/</c>) of the agent using this work dir.</summary>
    public static string ScopeFor(string workDir)
        => "a" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Path.GetFullPath(workDir))))[..12];
}
