namespace Scheduler.Agent.Isolation;

/// <summary>No isolation (not root, or <c>--isolation none</c>): tasks share the agent's cgroups;
/// kills go to the task's process group only.</summary>
public sealed class NoIsolator : IIsolator
{
    public string Name => "none";

    public IContainerCgroup? Create(string containerId, ContainerLimits limits) => null;

    public IContainerCgroup? Open(string containerId) => null;

    public string? RuntimeCgroupsPath(string containerId) => null;

    public CgroupLayout Layout(string containerId) => CgroupLayout.None;

    public IReadOnlyList<string> RemoveStale(IReadOnlySet<string> keep) => [];

    public void RemoveScopeIfEmpty()
    {
    }
}
