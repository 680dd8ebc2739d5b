using Sched.V1;
using Scheduler.Allocation;
using Scheduler.Master.Election;
using Scheduler.Master.Registry;

namespace Scheduler.Master;

/// <summary>
/// The replaceable parts of a master: registry store, leader election and allocator. The
/// defaults follow <see cref="MasterOptions.EtcdEndpoints"/> (embedded file registry and
/// standalone election when empty); tests and embedders may swap any of them.
/// </summary>
public sealed class MasterComponents
{
    /// <summary>Opens the registry store (once per master process); writes are fenced by the election.</summary>
    public Func<IServiceProvider, MasterOptions, ILeaderElection, IRegistryStore>? Registry { get; set; }

    /// <summary>Creates the election for this master (its MasterInfo carries the advertised address).</summary>
    public Func<IServiceProvider, MasterOptions, MasterInfo, ILeaderElection>? Election { get; set; }

    /// <summary>Creates a fresh allocator for each leadership term.</summary>
    public Func<IServiceProvider, MasterOptions, TimeProvider, IAllocator>? Allocator { get; set; }
}
