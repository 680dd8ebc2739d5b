using Scheduler.Master.Registry;

namespace Scheduler.Master.Tests.Registry;

/// <summary>The in-memory store under the registry contract: every store opened by one test
/// shares the test's <see cref="InMemoryRegistryStore.Contents"/>, as file stores share a work dir.</summary>
public sealed class InMemoryRegistryStoreTests : RegistryStoreContractTests
{
    private readonly InMemoryRegistryStore.Contents _contents = new();

    protected override Task<IRegistryStore> OpenStoreAsync() => Task.FromResult<IRegistryStore>(new InMemoryRegistryStore(_contents));

    protected override Task DeleteStorageAsync() => Task.CompletedTask;
}
