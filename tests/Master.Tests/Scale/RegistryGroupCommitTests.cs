using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using Scheduler.Master.Loop;
using Scheduler.Master.Registry;
using Xunit;

namespace Scheduler.Master.Tests.Scale;

/// <summary>Writes queued while a commit runs are combined, keep their order and their last value per key.</summary>
public sealed class RegistryGroupCommitTests
{
    [Fact]
    public async Task Writes_queued_during_a_commit_go_in_few_commits_and_the_last_write_of_a_key_wins()
    {
        var dir = Directory.CreateTempSubdirectory("sched-groupcommit-");
        try
        {
            var counting = new CountingStore(FileRegistryStore.Open(dir.FullName));
            await using (counting)
            {
                await using var writer = new RegistryWriter(counting, NullLogger.Instance, () => { }, CancellationToken.None);
                var first = writer.Enqueue(new RegistryWrite("k/first", ByteString.CopyFromUtf8("0")));
                await counting.FirstCommitStarted.WaitAsync(TimeSpan.FromSeconds(10));

                // While the first commit is held, 200 writes queue up (keys repeat: 50 distinct).
                var pending = new List<Task>();
                for (var i = 0; i < 200; i++)
                {
                    pending.Add(writer.Enqueue(new RegistryWrite($"k/{i % 50}", ByteString.CopyFromUtf8(i.ToString(System.Globalization.CultureInfo.InvariantCulture)))));
                }
                pending.Add(writer.Enqueue(RegistryWrite.Delete("k/first")));
                counting.ReleaseFirstCommit();
                await Task.WhenAll(pending.Append(first)).WaitAsync(TimeSpan.FromSeconds(30));

                Assert.InRange(counting.Commits, 2, 10); // 1 + ⌈201 / 64⌉ at most, not 202
                var records = await counting.LoadAsync(CancellationToken.None);
                Assert.False(records.ContainsKey("k/first"));
                for (var k = 0; k < 50; k++)
                {
                    Assert.Equal((150 + k).ToString(System.Globalization.CultureInfo.InvariantCulture), records[$"k/{k}"].ToStringUtf8());
                }
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>The real file store, counting commits and holding the first one until released.</summary>
    private sealed class CountingStore(IRegistryStore inner) : IRegistryStore
    {
        private readonly TaskCompletionSource _firstStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _commits;

        public int Commits => Volatile.Read(ref _commits);

        public Task FirstCommitStarted => _firstStarted.Task;

        public void ReleaseFirstCommit() => _release.TrySetResult();

        public Task<IReadOnlyDictionary<string, ByteString>> LoadAsync(CancellationToken cancellationToken) => inner.LoadAsync(cancellationToken);

        public async Task CommitAsync(IReadOnlyList<RegistryWrite> writes, CancellationToken cancellationToken)
        {
            Assert.Equal(writes.Count, writes.Select(w => w.Key).Distinct().Count());
            if (Interlocked.Increment(ref _commits) == 1)
            {
                _firstStarted.TrySetResult();
                await _release.Task.WaitAsync(cancellationToken);
            }
            await inner.CommitAsync(writes, cancellationToken);
        }

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
