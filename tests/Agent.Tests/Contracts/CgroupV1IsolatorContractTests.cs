using Scheduler.Agent.Isolation;

namespace Scheduler.Agent.Tests.Contracts;

/// <summary>The isolator contract for cgroups v1 (this host's hierarchy).</summary>
public sealed class CgroupV1IsolatorContractTests : IsolatorContractTests
{
    protected override IIsolator? TryCreate(string scope) => CgroupV1Isolator.TryCreate(scope);

    protected override string Unavailable => "this host has no cgroup v1 hierarchy with cpu, cpuacct, memory, pids and freezer";

    protected override string LayoutKind => "v1";
}
