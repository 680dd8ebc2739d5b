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

    /// <summary>Where a container's cgroups are (whether or not they exist yet): what a supervisor
    /// needs to put a task in them, kill everything in them, read their usage and remove them.</summary>
    CgroupLayout Layout(string containerId);

    /// <summary>Kills and removes every container of this scope not in <paramref name="keep"/>.</summary>
    /// <returns>The ids removed.</returns>
    IReadOnlyList<string> RemoveStale(IReadOnlySet<string> keep);

    /// <summary>Removes this agent's scope cgroup(s) when no container is left in them.</summary>
    void RemoveScopeIfEmpty();
}

/// <summary>The cgroup directories of one container, as a supervisor sees them.</summary>
/// <param name="Kind"><c>v1</c>, <c>v2</c> or <c>none</c>.</param>
/// <param name="ProcsFiles">The <c>cgroup.procs</c> files a task writes its pid to in order to join.</param>
/// <param name="Dirs">Controller → directory: <c>freezer</c>, <c>memory</c>, <c>cpuacct</c> (v1) or
/// <c>unified</c> (v2).</param>
/// <param name="RemoveDirs">Every directory to remove once the container is empty (for v1 this
/// includes the hierarchies an OCI runtime also creates the container in).</param>
public sealed record CgroupLayout(string Kind, IReadOnlyList<string> ProcsFiles, IReadOnlyDictionary<string, string> Dirs, IReadOnlyList<string> RemoveDirs)
{
    public static CgroupLayout None { get; } = new("none", [], new Dictionary<string, string>(), []);
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
