using Sched.V1;

namespace Scheduler.Agent.Isolation;

/// <summary>Limits applied to one task container.</summary>
/// <param name="Cpus">Cores (fractional); 0 = unlimited.</param>
/// <param name="MemBytes">Memory limit in bytes; 0 = unlimited.</param>
/// <param name="Pids">Process/thread limit; 0 = unlimited.</param>
public sealed record ContainerLimits(double Cpus, long MemBytes, int Pids);

/// <summary>
/// Isolation of task containers (cgroups). Implementations: <see cref="CgroupV1Isolator"/>,
/// <see cref="CgroupV2Isolator"/> and <see cref="NoIsolator"/>. A container's cgroups live under
/// <c>sched/&lt;scope&gt;/&lt;container&gt;</c> where the scope names this agent.
/// </summary>
public interface IIsolator
{
    /// <summary><c>cgroups-v1</c>, <c>cgroups-v2</c> or <c>none</c>.</summary>
    string Name { get; }

    /// <summary>Creates the container's cgroups with its limits (null when isolation is off).
    /// Throws <see cref="IsolationException"/>.</summary>
    IContainerCgroup? Create(string containerId, ContainerLimits limits);

    /// <summary>Opens an existing container's cgroups (null when gone).</summary>
    IContainerCgroup? Open(string containerId);

    /// <summary>The cgroup path an OCI runtime should use (<c>linux.cgroupsPath</c>), or null.</summary>
    string? RuntimeCgroupsPath(string containerId);

    /// <summary>Kills and removes every container of this scope not in <paramref name="keep"/>.</summary>
    /// <returns>The ids removed.</returns>
    IReadOnlyList<string> RemoveStale(IReadOnlySet<string> keep);

    /// <summary>Removes this agent's scope cgroup(s) when no container is left in them.</summary>
    void RemoveScopeIfEmpty();
}

/// <summary>One container's cgroup(s).</summary>
public interface IContainerCgroup
{
    string Id { get; }

    /// <summary>The <c>cgroup.procs</c> files a process writes its pid to in order to join.</summary>
    IReadOnlyList<string> ProcsFiles { get; }

    /// <summary>The processes in the container now.</summary>
    IReadOnlyList<int> Pids();

    /// <summary>Usage counters now.</summary>
    ResourceStatistics Statistics();

    /// <summary>Number of OOM kills in the container so far.</summary>
    uint OomKills();

    /// <summary>Stops and SIGKILLs every process in the container (frozen first, so none can fork
    /// away) and waits until it is empty.</summary>
    void KillAll();

    /// <summary>Removes the cgroup(s); kills what is left first.</summary>
    void Destroy();
}

/// <summary>A container could not be isolated (cgroup creation or a limit failed).</summary>
public sealed class IsolationException(string message, Exception? inner = null) : Exception(message, inner);
