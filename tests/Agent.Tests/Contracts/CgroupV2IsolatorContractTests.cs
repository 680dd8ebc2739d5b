using Scheduler.Agent.Isolation;

namespace Scheduler.Agent.Tests.Contracts;

/// <summary>The isolator contract for cgroups v2.</summary>
public sealed class CgroupV2IsolatorContractTests : IsolatorContractTests
{
    protected override IIsolator? TryCreate(string scope) => CgroupV2Isolator.TryCreate(scope);

    protected override string Unavailable => CgroupFiles.Mounts().V2 is { } v2
        ? $"the cgroup2 hierarchy at {v2} does not offer the cpu, memory and pids controllers (a hybrid-cgroup host: they are bound to v1)"
        : "this host has no cgroup2 mount";

    protected override string LayoutKind => "v2";
}
