using System.Collections.Immutable;
using Google.Protobuf;

namespace Scheduler.Master.Registry;

/// <summary>
/// A registry kept in memory: nothing survives the process. For tests that drive the master
/// directly (no disk, no etcd) and for throwaway masters. Held to the same contract as the file
/// and etcd stores (tests/Master.Tests/Registry): commits are atomic and ordered, a loaded
/// snapshot never changes afterwards.
/// <para>
/// A store and the <see cref="Contents"/> it writes to are separate, so that a store opened again
/// over the same contents sees what an earlier one committed (as a file store reopened on the
/// same work dir does), and a test can hand a second master the registry of a first one.
/// </para>
/// </summary>
public sealed class InMemoryRegistryStore(InMemoryRegistryStore.Contents? contents = null) : IRegistryStore
{
    /// <summary>The stored records; shared by every store opened over them. Thread-safe.</summary>
    public sealed class Contents
    {
        private readonly Lock _sync = new();
        private ImmutableSortedDictionary<string, ByteString> _records = ImmutableSortedDictionary.Create<string, ByteString>(StringComparer.Ordinal);

        /// <summary>The records as they are now (an immutable snapshot).</summary>
        public IReadOnlyDictionary<string, ByteString> Snapshot
        {
            get
            {
                lock (_sync)
                {
                    return _records;
                }
            }
        }

        internal void Apply(IReadOnlyList<RegistryWrite> writes)
        {
            lock (_sync)
            {
                var next = _records.ToBuilder();
                foreach (var w in writes)
                {
                    if (w.Value is null)
                    {
                        next.Remove(w.Key);
                    }
                    else
                    {
                        next[w.Key] = w.Value;
                    }
                }
                _records = next.ToImmutable();
            }
        }
    }

    private bool _disposed;

    /// <summary>The records this store reads and writes.</summary>
    public Contents Records { get; } = contents ?? new Contents();

    public Task<IReadOnlyDictionary<string, ByteString>> LoadAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(Records.Snapshot);
    }

    public Task CommitAsync(IReadOnlyList<RegistryWrite> writes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(writes);
        ObjectDisposedException.ThrowIf(_disposed, this);
        cancellationToken.ThrowIfCancellationRequested();
        // Validate the whole commit before applying any of it: all or nothing.
        foreach (var w in writes)
        {
            ArgumentException.ThrowIfNullOrEmpty(w.Key, nameof(writes));
        }
        Records.Apply(writes);
        return Task.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        _disposed = true;
        return ValueTask.CompletedTask;
    }
}
