namespace Scheduler.Master;

/// <summary>The default components: embedded file registry + standalone election without etcd,
/// etcd store + etcd election with it; the hierarchical DRF allocator.</summary>
internal static class MasterDefaults
{
    public static void Apply(MasterComponents components)
    {
        // Filled in as the registry, election and allocator implementations land.
    }
}
