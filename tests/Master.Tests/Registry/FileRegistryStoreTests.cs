using Google.Protobuf;
using Scheduler.Master.Registry;
using Xunit;

namespace Scheduler.Master.Tests.Registry;

public sealed class FileRegistryStoreTests : RegistryStoreContractTests
{
    private readonly string _workDir = Path.Combine(Path.GetTempPath(), "sched-registry-" + Guid.NewGuid().ToString("N"));

    protected override Task<IRegistryStore> OpenStoreAsync() => Task.FromResult<IRegistryStore>(FileRegistryStore.Open(_workDir));

    protected override Task DeleteStorageAsync()
    {
        if (Directory.Exists(_workDir))
        {
            Directory.Delete(_workDir, recursive: true);
        }
        return Task.CompletedTask;
    }

    [Fact]
    public async Task A_second_master_on_the_same_work_dir_is_refused()
    {
        await using var first = FileRegistryStore.Open(_workDir);
        var e = Assert.Throws<RegistryLockedException>(() => FileRegistryStore.Open(_workDir));
        Assert.Contains("in use by another master", e.Message);
        Assert.Contains(Path.Combine(_workDir, "registry"), e.Message);
        await first.DisposeAsync();
        // Released on dispose.
        await using var again = FileRegistryStore.Open(_workDir);
    }

    [Fact]
    public async Task A_corrupted_file_is_reported_naming_the_file()
    {
        var store = FileRegistryStore.Open(_workDir);
        await store.CommitAsync([new RegistryWrite("agents/a", ByteString.CopyFromUtf8("payload-payload"))], Timeout);
        var path = store.FilePath;
        await store.DisposeAsync();

        var bytes = await File.ReadAllBytesAsync(path);
        bytes[20] ^= 0x5A;
        await File.WriteAllBytesAsync(path, bytes);
        await using var reopened = FileRegistryStore.Open(_workDir);
        var e = await Assert.ThrowsAsync<RegistryCorruptException>(() => reopened.LoadAsync(Timeout));
        Assert.Contains(path, e.Message);
        Assert.Equal(path, e.Location);
        // Writing over a file that cannot be read would lose its records: refused too.
        await Assert.ThrowsAsync<RegistryCorruptException>(() => reopened.CommitAsync([RegistryWrite.Delete("x")], Timeout));
    }

    [Fact]
    public async Task A_truncated_file_is_reported_as_corrupt()
    {
        var store = FileRegistryStore.Open(_workDir);
        await store.CommitAsync([new RegistryWrite("agents/a", ByteString.CopyFromUtf8("v"))], Timeout);
        var path = store.FilePath;
        await store.DisposeAsync();
        var bytes = await File.ReadAllBytesAsync(path);
        await File.WriteAllBytesAsync(path, bytes[..5]);
        await using var reopened = FileRegistryStore.Open(_workDir);
        var e = await Assert.ThrowsAsync<RegistryCorruptException>(() => reopened.LoadAsync(Timeout));
        Assert.Contains("corrupt", e.Message);
    }

    [Fact]
    public async Task A_leftover_temporary_file_from_a_crash_is_ignored()
    {
        var store = FileRegistryStore.Open(_workDir);
        await store.CommitAsync([new RegistryWrite("agents/a", ByteString.CopyFromUtf8("committed"))], Timeout);
        var path = store.FilePath;
        await store.DisposeAsync();
        // A crash between writing the temporary file and renaming it leaves a partial temp file.
        await File.WriteAllBytesAsync(path + ".tmp", [1, 2, 3]);
        await using var reopened = FileRegistryStore.Open(_workDir);
        var loaded = await reopened.LoadAsync(Timeout);
        Assert.Equal("committed", loaded["agents/a"].ToStringUtf8());
        await reopened.CommitAsync([new RegistryWrite("agents/b", ByteString.CopyFromUtf8("next"))], Timeout);
        Assert.Equal(2, (await reopened.LoadAsync(Timeout)).Count);
    }

    [Fact]
    public async Task Concurrent_commits_are_grouped_into_fewer_files()
    {
        await using var store = FileRegistryStore.Open(_workDir);
        const int Count = 200;
        // Issued without awaiting: they queue while the first file is being written.
        var commits = Enumerable.Range(0, Count)
            .Select(i => store.CommitAsync([new RegistryWrite($"agents/a{i}", ByteString.CopyFromUtf8("v"))], Timeout))
            .ToArray();
        await Task.WhenAll(commits);
        Assert.Equal(Count, (await store.LoadAsync(Timeout)).Count);
        Assert.True(store.FilesWritten < Count, $"{store.FilesWritten} files for {Count} concurrent commits: no grouping");
    }

    [Fact]
    public async Task Commits_after_dispose_are_refused()
    {
        var store = FileRegistryStore.Open(_workDir);
        await store.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => store.CommitAsync([RegistryWrite.Delete("x")], Timeout));
    }
}
