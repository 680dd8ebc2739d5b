using Scheduler.Allocation;
using Scheduler.Master.Election;
using Scheduler.Master.Registry;

namespace Scheduler.Master;

/// <summary>The default components: embedded file registry + standalone election without etcd,
/// etcd store + etcd election with it; the hierarchical DRF allocator.</summary>
internal static class MasterDefaults
{
    public static void Apply(MasterComponents components)
    {
        components.Registry ??= (_, options, _) => options.EtcdEndpoints.Count == 0
            ? FileRegistryStore.Open(options.WorkDir)
            : throw new NotSupportedException("etcd-backed masters are not available in this build; omit --etcd to run a single master");
        components.Election ??= (_, options, self) => options.EtcdEndpoints.Count == 0
            ? new StandaloneElection(self)
            : throw new NotSupportedException("etcd-backed masters are not available in this build; omit --etcd to run a single master");
        components.Allocator ??= (_, options, time) => new HierarchicalDrfAllocator(
            new AllocatorOptions { AllocationInterval = options.AllocationInterval },
            time,
            new Random(0x5EED));
    }
}
