using Google.Protobuf;
using Sched.V1;
using Scheduler.Jobs.State;
using Scheduler.LocalEtcd;
using Scheduler.Master.Election;
using Scheduler.Master.Registry;

namespace Scheduler.Jobs.Tests;

/// <summary>
/// The jobs state on the masters' registry stores: one contract, run against the embedded file
/// store and against etcd (a real etcd process). Records are written only when they change, a
/// purged job's record is deleted, and a state file of an earlier version is imported once.
/// </summary>
public abstract class JobStateStoreContractTests : IAsyncLifetime
{
    protected string Dir { get; } = Path.Combine(Path.GetTempPath(), "jobs-store-" + Guid.NewGuid().ToString("N")[..10]);

    /// <summary>The store under test, opened afresh (as a restarted or newly elected instance would).</summary>
    protected abstract Task<IRegistryStore> OpenAsync();

    protected abstract Task CloseAsync(IRegistryStore store);

    public virtual Task InitializeAsync()
    {
        Directory.CreateDirectory(Dir);
        return Task.CompletedTask;
    }

    public virtual Task DisposeAsync()
    {
        Directory.Delete(Dir, recursive: true);
        return Task.CompletedTask;
    }

    protected static JobsState Sample()
    {
        var state = new JobsState { FrameworkId = "fw-1", NextTaskNumber = 7 };
        foreach (var name in new[] { "web", "nightly" })
        {
            var job = new JobRecord { Name = name, Version = 1, LastGoodVersion = 1 };
            job.Versions.Add(new JobVersionRecord { Version = 1, JobFile = $"name: {name}\n", FileName = $"{name}.yaml" });
            job.Instances.Add(new InstanceRecord { Id = $"{name}-0", TaskId = $"{name}-0.3", State = InstanceStates.Running, AgentId = "a1" });
            state.Jobs[name] = job;
        }
        return state;
    }

    [Fact]
    public async Task A_saved_state_loads_back_whole()
    {
        var registry = await OpenAsync();
        var (store, empty) = await JobStateStore.LoadAsync(registry, Dir, 128, CancellationToken.None);
        Assert.Empty(empty.Jobs);
        Assert.Null(empty.FrameworkId);
        await store.SaveAsync(Sample(), CancellationToken.None);
        await CloseAsync(registry);

        registry = await OpenAsync();
        var (_, loaded) = await JobStateStore.LoadAsync(registry, Dir, 128, CancellationToken.None);
        await CloseAsync(registry);
        Assert.Equal("fw-1", loaded.FrameworkId);
        Assert.Equal(7, loaded.NextTaskNumber);
        Assert.Equal(["nightly", "web"], loaded.Jobs.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("web-0.3", loaded.Jobs["web"].Instances.Single().TaskId);
        Assert.Equal("name: web\n", loaded.Jobs["web"].Versions.Single().JobFile);
    }

    [Fact]
    public async Task Only_changed_records_are_written_and_a_purged_job_is_deleted()
    {
        var registry = new RecordingStore(await OpenAsync());
        var (store, _) = await JobStateStore.LoadAsync(registry, Dir, 128, CancellationToken.None);
        var state = Sample();
        await store.SaveAsync(state, CancellationToken.None);
        Assert.Equal(["job/nightly", "job/web", "meta"], registry.Commits.Single().Select(w => w.Key).Order(StringComparer.Ordinal));

        await store.SaveAsync(state, CancellationToken.None);
        Assert.Single(registry.Commits);

        state.Jobs["web"].Instances[0].State = InstanceStates.Killing;
        await store.SaveAsync(state, CancellationToken.None);
        Assert.Equal(["job/web"], registry.Commits[1].Select(w => w.Key));

        state.Jobs.Remove("nightly");
        state.NextTaskNumber++;
        await store.SaveAsync(state, CancellationToken.None);
        var last = registry.Commits[2];
        Assert.Equal("meta", last[0].Key);
        Assert.Equal([("job/nightly", true)], last.Skip(1).Select(w => (w.Key, w.Value is null)));
        await CloseAsync(registry.Inner);

        var reopened = await OpenAsync();
        var (_, loaded) = await JobStateStore.LoadAsync(reopened, Dir, 128, CancellationToken.None);
        await CloseAsync(reopened);
        Assert.Equal(["web"], loaded.Jobs.Keys);
        Assert.Equal(InstanceStates.Killing, loaded.Jobs["web"].Instances[0].State);
        Assert.Equal(8, loaded.NextTaskNumber);
    }

    [Fact]
    public async Task More_changes_than_one_commit_holds_go_in_several_with_the_counter_first()
    {
        var registry = new RecordingStore(await OpenAsync());
        var (store, _) = await JobStateStore.LoadAsync(registry, Dir, 2, CancellationToken.None);
        var state = Sample();
        state.Jobs["third"] = new JobRecord { Name = "third", Versions = { new JobVersionRecord { Version = 1, JobFile = "name: third\n" } }, Version = 1 };
        await store.SaveAsync(state, CancellationToken.None);
        Assert.Equal(2, registry.Commits.Count);
        Assert.Equal("meta", registry.Commits[0][0].Key);
        Assert.All(registry.Commits, c => Assert.True(c.Count <= 2));
        await CloseAsync(registry.Inner);
    }

    [Fact]
    public async Task A_state_file_of_an_earlier_version_is_imported_once()
    {
        var legacy = Path.Combine(Dir, JobStateStore.LegacyFileName);
        await File.WriteAllTextAsync(legacy, """{"FrameworkId":"old-fw","NextTaskNumber":42,"Jobs":{"web":{"Name":"web","Version":1,"Versions":[{"Version":1,"JobFile":"name: web\n","FileName":"web.yaml"}]}}}""");
        var registry = await OpenAsync();
        var (_, state) = await JobStateStore.LoadAsync(registry, Dir, 128, CancellationToken.None);
        await CloseAsync(registry);
        Assert.Equal("old-fw", state.FrameworkId);
        Assert.Equal(42, state.NextTaskNumber);
        Assert.False(File.Exists(legacy));
        Assert.True(File.Exists(legacy + ".imported"));

        registry = await OpenAsync();
        var (_, again) = await JobStateStore.LoadAsync(registry, Dir, 128, CancellationToken.None);
        await CloseAsync(registry);
        Assert.Equal(["web"], again.Jobs.Keys);
    }

    /// <summary>Passes commits to the real store and records them.</summary>
    private sealed class RecordingStore(IRegistryStore inner) : IRegistryStore
    {
        public IRegistryStore Inner => inner;

        public List<IReadOnlyList<RegistryWrite>> Commits { get; } = [];

        public Task<IReadOnlyDictionary<string, ByteString>> LoadAsync(CancellationToken cancellationToken) => inner.LoadAsync(cancellationToken);

        public async Task CommitAsync(IReadOnlyList<RegistryWrite> writes, CancellationToken cancellationToken)
        {
            await inner.CommitAsync(writes, cancellationToken);
            Commits.Add([.. writes]);
        }

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}

/// <summary>The embedded file store (a single master's, here the jobs' own work dir).</summary>
public sealed class FileJobStateStoreTests : JobStateStoreContractTests
{
    protected override Task<IRegistryStore> OpenAsync() => Task.FromResult<IRegistryStore>(FileRegistryStore.Open(Dir));

    protected override async Task CloseAsync(IRegistryStore store) => await store.DisposeAsync();
}

/// <summary>etcd, under the jobs' own root, written only while this instance's leadership holds.</summary>
public sealed class EtcdJobStateStoreTests : JobStateStoreContractTests
{
    private LocalEtcdCluster _etcd = null!;
    private EtcdCoordination? _coordination;
    private EtcdLeaderElection? _election;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _etcd = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 1 });
    }

    public override async Task DisposeAsync()
    {
        if (_election is not null)
        {
            await _election.DisposeAsync();
        }
        _coordination?.Dispose();
        await _etcd.DisposeAsync();
        await base.DisposeAsync();
    }

    protected override async Task<IRegistryStore> OpenAsync()
    {
        if (_coordination is null)
        {
            _coordination = new EtcdCoordination([.. _etcd.Endpoints], new EtcdCoordinationOptions { Root = "/sched/jobs" });
            _election = _coordination.CreateElection(new MasterInfo { Id = "jobs-a", Address = "127.0.0.1:1" });
            await _election.CampaignAsync(CancellationToken.None);
        }
        return _coordination.CreateStore();
    }

    protected override async Task CloseAsync(IRegistryStore store) => await store.DisposeAsync();

    [Fact]
    public async Task A_save_after_the_leadership_ended_is_refused_and_nothing_lands()
    {
        var registry = await OpenAsync();
        var (store, _) = await JobStateStore.LoadAsync(registry, Dir, 128, CancellationToken.None);
        await store.SaveAsync(Sample(), CancellationToken.None);

        await _election!.ResignAsync(CancellationToken.None);
        var changed = Sample();
        changed.Jobs["web"].Instances[0].TaskId = "web-0.99";
        await Assert.ThrowsAsync<RegistryFencedException>(() => store.SaveAsync(changed, CancellationToken.None));

        // A new leader (another instance) reads what the old one last saved.
        await using var other = new EtcdCoordinationHolder(_etcd.Endpoints);
        var (_, seen) = await JobStateStore.LoadAsync(await other.LeadAsync(), Dir, 128, CancellationToken.None);
        Assert.Equal("web-0.3", seen.Jobs["web"].Instances[0].TaskId);
        await registry.DisposeAsync();
    }

    private sealed class EtcdCoordinationHolder(IReadOnlyList<string> endpoints) : IAsyncDisposable
    {
        private readonly EtcdCoordination _coordination = new([.. endpoints], new EtcdCoordinationOptions { Root = "/sched/jobs" });
        private EtcdLeaderElection? _election;
        private IRegistryStore? _store;

        public async Task<IRegistryStore> LeadAsync()
        {
            _election = _coordination.CreateElection(new MasterInfo { Id = "jobs-b", Address = "127.0.0.1:2" });
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _election.CampaignAsync(timeout.Token);
            return _store = _coordination.CreateStore();
        }

        public async ValueTask DisposeAsync()
        {
            if (_store is not null)
            {
                await _store.DisposeAsync();
            }
            if (_election is not null)
            {
                await _election.DisposeAsync();
            }
            _coordination.Dispose();
        }
    }
}
