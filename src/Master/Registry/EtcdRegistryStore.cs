using Etcdserverpb;
using Google.Protobuf;
using Mvccpb;
using Scheduler.Etcd;

namespace Scheduler.Master.Registry;

/// <summary>
/// The leadership that guards registry writes: the leader key and its create revision (the term).
/// A write is applied only while that key still exists with that create revision.
/// </summary>
/// <param name="LeaderKey">The etcd key of the leader, e.g. <c>/sched/leader</c>.</param>
/// <param name="Term">The create revision of the leader key when this master became leader.</param>
/// <param name="Lost">Cancelled when this master's leadership ends (writes are refused locally at once).</param>
public sealed record RegistryFence(string LeaderKey, long Term, CancellationToken Lost);

/// <summary>Settings of an <see cref="EtcdRegistryStore"/>.</summary>
public sealed class EtcdRegistryStoreOptions
{
    /// <summary>Records live under this prefix: <c>/sched/registry/agents/&lt;id&gt;</c>…</summary>
    public string Prefix { get; init; } = "/sched/registry/";

    /// <summary>etcd's <c>--max-txn-ops</c> (default 128): the most records one commit may change.</summary>
    public int MaxTxnOps { get; init; } = 128;

    /// <summary>Records read per Range request when loading.</summary>
    public int LoadPageSize { get; init; } = 500;

    /// <summary>Queued commits are merged into one transaction up to this many bytes (etcd's request limit is 1.5 MiB).</summary>
    public int MaxGroupBytes { get; init; } = 1024 * 1024;
}

/// <summary>
/// The registry of replicated masters, in etcd: one key per record under a prefix. Every commit is
/// one etcd transaction guarded by the writer's leadership — it compares the leader key's create
/// revision with the term the writer was elected in — so a deposed leader's write fails with
/// <see cref="RegistryFencedException"/> and never lands. Commits are applied one transaction at a
/// time in arrival order; commits queued behind a transaction are merged into the next one.
/// </summary>
public sealed class EtcdRegistryStore : IRegistryStore
{
    private readonly EtcdClient _client;
    private readonly Func<RegistryFence?> _fence;
    private readonly EtcdRegistryStoreOptions _options;
    private readonly ByteString _prefix;
    private readonly Lock _gate = new();
    private readonly GroupCommitQueue<PendingCommit> _commits;
    private bool _disposed;

    /// <param name="client">The etcd client (not disposed by the store).</param>
    /// <param name="fence">The current leadership of this master, read when a commit is made; null = not leading.</param>
    public EtcdRegistryStore(EtcdClient client, Func<RegistryFence?> fence, EtcdRegistryStoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(fence);
        _client = client;
        _fence = fence;
        _options = options ?? new EtcdRegistryStoreOptions();
        if (string.IsNullOrEmpty(_options.Prefix) || !_options.Prefix.EndsWith('/'))
        {
            throw new ArgumentException($"The registry prefix '{_options.Prefix}' must be non-empty and end with '/'.", nameof(options));
        }
        _prefix = ByteString.CopyFromUtf8(_options.Prefix);
        _commits = new GroupCommitQueue<PendingCommit>(ApplyAsync, Fits);
    }

    /// <summary>Number of etcd transactions written (one per group of commits); for tests and metrics.</summary>
    public long TransactionsWritten => _commits.GroupsCommitted;

    /// <inheritdoc />
    public async Task<IReadOnlyDictionary<string, ByteString>> LoadAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var records = new Dictionary<string, ByteString>(StringComparer.Ordinal);
        var end = EtcdClient.PrefixEnd(_prefix);
        var key = _prefix;
        long revision = 0;
        try
        {
            while (true)
            {
                // Every page is read at the revision of the first, so the result is one consistent snapshot.
                var page = await _client.RangeAsync(new RangeRequest { Key = key, RangeEnd = end, Limit = _options.LoadPageSize, Revision = revision }, cancellationToken)
                    .ConfigureAwait(false);
                if (revision == 0)
                {
                    revision = page.Header.Revision;
                }
                foreach (var kv in page.Kvs)
                {
                    records[EtcdClient.KeyText(kv.Key)[_options.Prefix.Length..]] = kv.Value;
                }
                if (!page.More || page.Kvs.Count == 0)
                {
                    return records;
                }
                key = ByteString.CopyFrom([.. page.Kvs[^1].Key.Span, 0]);
            }
        }
        catch (EtcdException e)
        {
            throw new RegistryUnavailableException($"Could not load the registry from etcd ({string.Join(", ", _client.Endpoints)}, prefix {_options.Prefix}): {e.Message}", e);
        }
    }

    /// <inheritdoc />
    public async Task CommitAsync(IReadOnlyList<RegistryWrite> writes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(writes);
        foreach (var w in writes)
        {
            ArgumentException.ThrowIfNullOrEmpty(w.Key, nameof(writes));
        }
        var ops = Collapse(writes);
        if (ops.Count > _options.MaxTxnOps)
        {
            throw new ArgumentException(
                $"A registry commit changes {ops.Count} records, more than etcd accepts in one transaction ({_options.MaxTxnOps}, etcd's --max-txn-ops). " +
                "Raise --max-txn-ops on every etcd member and EtcdRegistryStoreOptions.MaxTxnOps together.", nameof(writes));
        }
        cancellationToken.ThrowIfCancellationRequested();
        // The leadership is captured now: a commit made in one term must never land in a later one.
        var fence = _fence();
        if (fence is null || fence.Lost.IsCancellationRequested)
        {
            throw new RegistryFencedException("This master is not the leader; registry writes are refused.");
        }
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
        }
        await _commits.Enqueue(new PendingCommit(ops, fence)).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private static Dictionary<string, ByteString?> Collapse(IReadOnlyList<RegistryWrite> writes)
    {
        // etcd refuses a transaction that names a key twice; the last write of a key is its outcome.
        var ops = new Dictionary<string, ByteString?>(StringComparer.Ordinal);
        foreach (var w in writes)
        {
            ops[w.Key] = w.Value;
        }
        return ops;
    }

    /// <summary>Whether <paramref name="next"/> may join <paramref name="group"/> in one transaction:
    /// the same term, within the request size and etcd's operation limit.</summary>
    private bool Fits(IReadOnlyList<PendingCommit> group, PendingCommit next)
    {
        if (next.Fence != group[0].Fence || group.Sum(c => c.Bytes) + next.Bytes > _options.MaxGroupBytes)
        {
            return false;
        }
        var keys = new HashSet<string>(next.Ops.Keys, StringComparer.Ordinal);
        foreach (var c in group)
        {
            keys.UnionWith(c.Ops.Keys);
        }
        return keys.Count <= _options.MaxTxnOps;
    }

    private async Task ApplyAsync(IReadOnlyList<PendingCommit> group)
    {
        var fence = group[0].Fence;
        if (fence.Lost.IsCancellationRequested)
        {
            throw Fenced(fence, null);
        }
        var ops = new Dictionary<string, ByteString?>(StringComparer.Ordinal);
        foreach (var c in group)
        {
            foreach (var (k, v) in c.Ops)
            {
                ops[k] = v;
            }
        }
        var leaderKey = ByteString.CopyFromUtf8(fence.LeaderKey);
        var txn = new TxnRequest
        {
            Compare =
            {
                new Compare
                {
                    Key = leaderKey,
                    Target = Compare.Types.CompareTarget.Create,
                    Result = Compare.Types.CompareResult.Equal,
                    CreateRevision = fence.Term,
                },
            },
            Failure = { new RequestOp { RequestRange = new RangeRequest { Key = leaderKey } } },
        };
        foreach (var (key, value) in ops)
        {
            var k = ByteString.CopyFromUtf8(_options.Prefix + key);
            txn.Success.Add(value is null
                ? new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = k } }
                : new RequestOp { RequestPut = new PutRequest { Key = k, Value = value } });
        }
        TxnResponse response;
        try
        {
            // Not cancellable by one caller: the transaction may carry other callers' commits.
            response = await _client.TxnAsync(txn, CancellationToken.None).ConfigureAwait(false);
        }
        catch (EtcdUnavailableException e)
        {
            // A transaction that timed out may still commit later, but only as a whole and only while
            // this master's term is still current (the compare is part of it).
            throw new RegistryUnavailableException($"The registry in etcd is unavailable; the write was not confirmed (if it lands later, it lands whole). {e.Message}", e);
        }
        catch (EtcdException e)
        {
            throw new RegistryUnavailableException($"etcd refused the registry write; nothing was written. {e.Message}", e);
        }
        if (!response.Succeeded)
        {
            var current = response.Responses.Count > 0 ? response.Responses[0].ResponseRange?.Kvs.FirstOrDefault() : null;
            throw Fenced(fence, current);
        }
    }

    private static RegistryFencedException Fenced(RegistryFence fence, KeyValue? current) => new(
        $"This master's leadership (term {fence.Term}) has ended; the registry write was refused. " +
        (current is null ? $"The leader key {fence.LeaderKey} is gone." : $"The leader key {fence.LeaderKey} now belongs to term {current.CreateRevision}."));

    /// <summary>Stops accepting commits; those queued are still written.</summary>
    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            _disposed = true;
        }
        await _commits.StopAsync(new ObjectDisposedException(nameof(EtcdRegistryStore)), drain: true).ConfigureAwait(false);
    }

    private sealed class PendingCommit(Dictionary<string, ByteString?> ops, RegistryFence fence)
    {
        public Dictionary<string, ByteString?> Ops { get; } = ops;

        public RegistryFence Fence { get; } = fence;

        public int Bytes { get; } = ops.Sum(o => o.Key.Length + (o.Value?.Length ?? 0) + 16);
    }
}
