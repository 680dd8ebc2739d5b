using Google.Protobuf;
using Scheduler.Master.Registry;
using Xunit;

namespace Scheduler.Master.Tests.Registry;

/// <summary>
/// The behaviour every <see cref="IRegistryStore"/> backend must have. One subclass per backend
/// supplies the storage; every test opens the store over that storage (again, to test reloads).
/// </summary>
public abstract class RegistryStoreContractTests : IAsyncLifetime
{
    private readonly List<IRegistryStore> _opened = [];

    /// <summary>Opens a store over this test's storage (the same storage on every call).</summary>
    protected abstract Task<IRegistryStore> OpenStoreAsync();

    /// <summary>Removes this test's storage; called after every store was disposed.</summary>
    protected abstract Task DeleteStorageAsync();

    public virtual Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var s in _opened)
        {
            await s.DisposeAsync();
        }
        await DeleteStorageAsync();
    }

    protected async Task<IRegistryStore> OpenAsync()
    {
        var store = await OpenStoreAsync();
        _opened.Add(store);
        return store;
    }

    protected async Task<IRegistryStore> ReopenAsync(IRegistryStore store)
    {
        _opened.Remove(store);
        await store.DisposeAsync();
        return await OpenAsync();
    }

    protected static ByteString Bytes(string text) => ByteString.CopyFromUtf8(text);

    protected static CancellationToken Timeout => new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token;

    [Fact]
    public async Task Empty_store_loads_nothing()
    {
        var store = await OpenAsync();
        Assert.Empty(await store.LoadAsync(Timeout));
    }

    [Fact]
    public async Task Put_then_load_returns_the_value()
    {
        var store = await OpenAsync();
        await store.CommitAsync([new RegistryWrite("agents/a1", Bytes("one"))], Timeout);
        var loaded = await store.LoadAsync(Timeout);
        Assert.Equal("one", Assert.Single(loaded, kv => kv.Key == "agents/a1").Value.ToStringUtf8());
        Assert.Single(loaded);
    }

    [Fact]
    public async Task Put_overwrites_and_delete_removes()
    {
        var store = await OpenAsync();
        await store.CommitAsync([new RegistryWrite("k1", Bytes("v1")), new RegistryWrite("k2", Bytes("v2"))], Timeout);
        await store.CommitAsync([new RegistryWrite("k1", Bytes("v1b")), RegistryWrite.Delete("k2")], Timeout);
        var loaded = await store.LoadAsync(Timeout);
        Assert.Equal(["k1"], loaded.Keys.ToArray());
        Assert.Equal("v1b", loaded["k1"].ToStringUtf8());
    }

    [Fact]
    public async Task Deleting_a_missing_key_is_not_an_error()
    {
        var store = await OpenAsync();
        await store.CommitAsync([RegistryWrite.Delete("nothing/here")], Timeout);
        Assert.Empty(await store.LoadAsync(Timeout));
    }

    [Fact]
    public async Task Writes_of_one_commit_apply_in_order()
    {
        var store = await OpenAsync();
        await store.CommitAsync(
        [
            new RegistryWrite("a", Bytes("1")),
            RegistryWrite.Delete("a"),
            RegistryWrite.Delete("b"),
            new RegistryWrite("b", Bytes("2")),
            new RegistryWrite("c", Bytes("3")),
            new RegistryWrite("c", Bytes("4")),
        ], Timeout);
        var loaded = await store.LoadAsync(Timeout);
        Assert.Equal(["b", "c"], loaded.Keys.Order(StringComparer.Ordinal).ToArray());
        Assert.Equal("4", loaded["c"].ToStringUtf8());
    }

    [Fact]
    public async Task A_rejected_commit_writes_nothing()
    {
        var store = await OpenAsync();
        await store.CommitAsync([new RegistryWrite("keep", Bytes("old"))], Timeout);
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.CommitAsync(
            [new RegistryWrite("keep", Bytes("new")), new RegistryWrite("other", Bytes("x")), new RegistryWrite("", Bytes("bad"))], Timeout));
        var loaded = await store.LoadAsync(Timeout);
        Assert.Equal(["keep"], loaded.Keys.ToArray());
        Assert.Equal("old", loaded["keep"].ToStringUtf8());
    }

    [Fact]
    public async Task Records_survive_reopening()
    {
        var store = await OpenAsync();
        await store.CommitAsync([new RegistryWrite("frameworks/f1", Bytes("fw")), new RegistryWrite("quotas/web", Bytes("q"))], Timeout);
        await store.CommitAsync([RegistryWrite.Delete("quotas/web"), new RegistryWrite("weights/web", Bytes("w"))], Timeout);
        store = await ReopenAsync(store);
        var loaded = await store.LoadAsync(Timeout);
        Assert.Equal(["frameworks/f1", "weights/web"], loaded.Keys.Order(StringComparer.Ordinal).ToArray());
        Assert.Equal("fw", loaded["frameworks/f1"].ToStringUtf8());
        Assert.Equal("w", loaded["weights/web"].ToStringUtf8());
    }

    [Fact]
    public async Task An_agents_reservations_and_volumes_survive_reopening()
    {
        var dynamic = new Sched.V1.Reservation
        {
            Type = Sched.V1.Reservation.Types.Type.Dynamic,
            Role = "eng/web",
            Principal = "ops",
            Labels = { ["team"] = "db" },
            RefinedFrom = new Sched.V1.Reservation { Type = Sched.V1.Reservation.Types.Type.Static, Role = "eng" },
        };
        var record = new Sched.V1.AgentRecord { Info = new Sched.V1.AgentInfo { Id = "a1", Hostname = "h" }, State = Sched.V1.AgentRecord.Types.State.Admitted };
        record.CheckpointedResources.Add(new Sched.V1.Resource { Name = "cpus", Scalar = 1.5, Reservation = dynamic });
        record.CheckpointedResources.Add(new Sched.V1.Resource
        {
            Name = "disk",
            Scalar = 512,
            Reservation = dynamic,
            Disk = new Sched.V1.DiskInfo
            {
                Persistence = new Sched.V1.DiskInfo.Types.Persistence { Id = "pg", Principal = "ops" },
                Volume = new Sched.V1.Volume { ContainerPath = "data", Mode = Sched.V1.Volume.Types.Mode.Rw },
            },
        });
        var store = await OpenAsync();
        await store.CommitAsync([RegistryRecords.PutAgent(record)], Timeout);
        store = await ReopenAsync(store);
        var snapshot = RegistryRecords.Parse(await store.LoadAsync(Timeout), "contract test");
        Assert.Equal(record, snapshot.Agents["a1"]);

        // UNRESERVE/DESTROY of everything leaves an agent record without checkpointed resources.
        record.CheckpointedResources.Clear();
        await store.CommitAsync([RegistryRecords.PutAgent(record)], Timeout);
        store = await ReopenAsync(store);
        Assert.Empty(RegistryRecords.Parse(await store.LoadAsync(Timeout), "contract test").Agents["a1"].CheckpointedResources);
    }

    [Fact]
    public async Task Large_values_round_trip_byte_for_byte()
    {
        var store = await OpenAsync();
        var value = new byte[768 * 1024];
        new Random(42).NextBytes(value);
        await store.CommitAsync([new RegistryWrite("agents/big", ByteString.CopyFrom(value))], Timeout);
        store = await ReopenAsync(store);
        var loaded = await store.LoadAsync(Timeout);
        Assert.True(loaded["agents/big"].Span.SequenceEqual(value));
    }

    [Fact]
    public async Task Keys_with_unusual_characters_and_empty_values_round_trip()
    {
        var store = await OpenAsync();
        string[] keys = ["agents/ünïcødé-✓", "frameworks/a b/c", "quotas/role.with.dots", "weights/*"];
        await store.CommitAsync(keys.Select(k => new RegistryWrite(k, k == "weights/*" ? ByteString.Empty : Bytes(k))).ToList(), Timeout);
        store = await ReopenAsync(store);
        var loaded = await store.LoadAsync(Timeout);
        Assert.Equal(keys.Order(StringComparer.Ordinal), loaded.Keys.Order(StringComparer.Ordinal));
        Assert.True(loaded["weights/*"].IsEmpty);
        Assert.Equal("frameworks/a b/c", loaded["frameworks/a b/c"].ToStringUtf8());
    }

    [Fact]
    public async Task Many_keys_load_completely()
    {
        const int Count = 3000;
        var store = await OpenAsync();
        for (var batch = 0; batch < Count / 100; batch++)
        {
            var writes = Enumerable.Range(batch * 100, 100)
                .Select(i => new RegistryWrite($"agents/agent-{i:D5}", Bytes(new string('x', i % 200) + i)))
                .ToList();
            await store.CommitAsync(writes, Timeout);
        }
        store = await ReopenAsync(store);
        var loaded = await store.LoadAsync(Timeout);
        Assert.Equal(Count, loaded.Count);
        for (var i = 0; i < Count; i++)
        {
            Assert.Equal(new string('x', i % 200) + i, loaded[$"agents/agent-{i:D5}"].ToStringUtf8());
        }
    }

    [Fact]
    public async Task Concurrent_commits_all_apply()
    {
        const int Count = 64;
        var store = await OpenAsync();
        await Task.WhenAll(Enumerable.Range(0, Count).Select(i => Task.Run(() =>
            store.CommitAsync([new RegistryWrite($"frameworks/f{i}", Bytes($"v{i}")), new RegistryWrite($"weights/r{i}", Bytes($"w{i}"))], Timeout))));
        store = await ReopenAsync(store);
        var loaded = await store.LoadAsync(Timeout);
        Assert.Equal(2 * Count, loaded.Count);
        for (var i = 0; i < Count; i++)
        {
            Assert.Equal($"v{i}", loaded[$"frameworks/f{i}"].ToStringUtf8());
            Assert.Equal($"w{i}", loaded[$"weights/r{i}"].ToStringUtf8());
        }
    }

    [Fact]
    public async Task Concurrent_commits_to_one_key_leave_one_of_the_values()
    {
        var store = await OpenAsync();
        await Task.WhenAll(Enumerable.Range(0, 32).Select(i => Task.Run(() =>
            store.CommitAsync([new RegistryWrite("agents/shared", Bytes($"v{i}")), new RegistryWrite("agents/shared-copy", Bytes($"v{i}"))], Timeout))));
        var loaded = await store.LoadAsync(Timeout);
        // Each commit is atomic: both keys carry the value of the same (last applied) commit.
        Assert.Equal(loaded["agents/shared"], loaded["agents/shared-copy"]);
    }

    [Fact]
    public async Task A_loaded_snapshot_does_not_change_with_later_commits()
    {
        var store = await OpenAsync();
        await store.CommitAsync([new RegistryWrite("k", Bytes("1"))], Timeout);
        var first = await store.LoadAsync(Timeout);
        await store.CommitAsync([new RegistryWrite("k", Bytes("2")), new RegistryWrite("k2", Bytes("x"))], Timeout);
        Assert.Equal("1", first["k"].ToStringUtf8());
        Assert.Single(first);
    }
}
