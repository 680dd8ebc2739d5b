using Microsoft.Extensions.DependencyInjection;
using Scheduler.Allocation;
using Scheduler.Etcd;
using Scheduler.Master.Election;
using Scheduler.Master.Registry;

namespace Scheduler.Master;

/// <summary>The default components: embedded file registry + standalone election without etcd,
/// etcd registry store + etcd election (writes fenced by the leadership term) with it; the
/// hierarchical DRF allocator.</summary>
internal static class MasterDefaults
{
    public static void Apply(MasterComponents components)
    {
        components.Election ??= (services, options, self) => options.EtcdEndpoints.Count == 0
            ? new StandaloneElection(self)
            : new EtcdLeaderElection(services.GetRequiredService<EtcdClient>(), self, new EtcdLeaderElectionOptions { Ttl = options.LeaseTtl });
        components.Registry ??= (services, options, election) => options.EtcdEndpoints.Count == 0
            ? FileRegistryStore.Open(options.WorkDir)
            : new EtcdRegistryStore(
                services.GetRequiredService<EtcdClient>(),
                () => election.Fence);
        components.Allocator ??= (_, options, time) => new HierarchicalDrfAllocator(
            new AllocatorOptions { AllocationInterval = options.AllocationInterval },
            time,
            new Random(0x5EED));
    }
}
