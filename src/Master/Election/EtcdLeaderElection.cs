using Etcdserverpb;
using Google.Protobuf;
using Sched.V1;
using Scheduler.Etcd;
using Scheduler.Master.Registry;
using Scheduler.Resilience;

namespace Scheduler.Master.Election;

/// <summary>Settings of an <see cref="EtcdLeaderElection"/>.</summary>
public sealed class EtcdLeaderElectionOptions
{
    /// <summary>The key held by the leader; its value is the leader's MasterInfo.</summary>
    public string LeaderKey { get; init; } = "/sched/leader";

    /// <summary>Each campaigning master claims <c>&lt;prefix&gt;&lt;advertise address&gt;</c>, so two masters cannot share an address.</summary>
    public string MastersPrefix { get; init; } = "/sched/masters/";

    /// <summary>Lease TTL: a dead leader is replaced within about this time. Whole seconds, at least 2.</summary>
    public TimeSpan Ttl { get; init; } = MasterOptions.DefaultLeaseTtl;

    /// <summary>Leadership is given up this long before the lease could expire on etcd; null = TTL/6.</summary>
    public TimeSpan? SafetyMargin { get; init; }
}

/// <summary>
/// Leader election on etcd. A master campaigns with a lease: a transaction creates the leader key
/// (value: its MasterInfo) only if the key does not exist. The key's create revision is the term —
/// it increases with every election and fences registry writes (<see cref="Fence"/>). Followers
/// watch the key (<see cref="CurrentLeader"/>, <see cref="LeaderChanged"/>) and campaign again when
/// it is deleted (lease expired or revoked).
/// The leader's <see cref="Leadership.Lost"/> is cancelled as soon as its lease keepalives are not
/// confirmed in time — before etcd can expire the lease and elect someone else — or when its key is
/// deleted or replaced.
/// </summary>
public sealed partial class EtcdLeaderElection : ILeaderElection
{
    /// <summary>The wait between campaigns: 100 ms doubling to 2 s.</summary>
    private static readonly Backoff CampaignBackoff = new(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(2)) { Jitter = 0 };

    private readonly EtcdClient _client;
    private readonly MasterInfo _self;
    private readonly EtcdLeaderElectionOptions _options;
    private readonly ByteString _leaderKey;
    private readonly ByteString _addressKey;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly Task _observer;
    private readonly TaskCompletionSource _observed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private MasterInfo? _currentLeader;
    private LeaseKeeper? _keeper;
    private CancellationTokenSource? _leadership;
    private RegistryFence? _fence;
    private bool _campaigning;

    /// <param name="client">The etcd client (not disposed by the election).</param>
    /// <param name="self">This master; <c>address</c> (its advertise address) and <c>id</c> are required.</param>
    public EtcdLeaderElection(EtcdClient client, MasterInfo self, EtcdLeaderElectionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(self);
        ArgumentException.ThrowIfNullOrEmpty(self.Address, nameof(self));
        ArgumentException.ThrowIfNullOrEmpty(self.Id, nameof(self));
        _options = options ?? new EtcdLeaderElectionOptions();
        if (_options.Ttl < TimeSpan.FromSeconds(2))
        {
            throw new ArgumentException($"The leader lease TTL must be at least 2 s (etcd's minimum with default timings); got {_options.Ttl.TotalSeconds} s.", nameof(options));
        }
        _client = client;
        _self = self.Clone();
        _leaderKey = ByteString.CopyFromUtf8(_options.LeaderKey);
        _addressKey = ByteString.CopyFromUtf8(_options.MastersPrefix + self.Address);
        _observer = Task.Run(ObserveAsync);
    }

    /// <inheritdoc />
    public MasterInfo? CurrentLeader
    {
        get
        {
            lock (_gate)
            {
                return _currentLeader;
            }
        }
    }

    /// <inheritdoc />
    public event Action<MasterInfo?>? LeaderChanged;

    /// <inheritdoc />
    public bool HoldsLeadership
    {
        get
        {
            lock (_gate)
            {
                return _fence is { Lost.IsCancellationRequested: false } && _keeper is { } keeper && keeper.Remaining > TimeSpan.Zero;
            }
        }
    }

    /// <inheritdoc />
    public bool Replicated => true;

    /// <summary>The fence of this master's current leadership (for <see cref="EtcdRegistryStore"/>); null when not leading.</summary>
    public RegistryFence? Fence
    {
        get
        {
            lock (_gate)
            {
                return _fence is { Lost.IsCancellationRequested: false } f ? f : null;
            }
        }
    }

    /// <inheritdoc />
    public event Action<Exception>? CampaignFailed;

    /// <summary>Completes once the leader key has been read at least once (the followers' view is initialised).</summary>
    public Task Observed => _observed.Task;

    /// <inheritdoc />
    public async Task<Leadership> CampaignAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stop.IsCancellationRequested, this);
            if (_campaigning)
            {
                throw new InvalidOperationException("A campaign is already running for this master.");
            }
            if (_fence is { Lost.IsCancellationRequested: false } && _currentLeader is { } leader)
            {
                return new Leadership((ulong)_fence.Term, leader, _fence.Lost);
            }
            _campaigning = true;
        }
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        var ct = linked.Token;
        try
        {
            // etcd unreachable, without quorum, or the lease lost while waiting: drop the lease and
            // campaign again with a new one (the caller's token bounds it).
            var campaign = CampaignBackoff.Pipeline<Leadership?>(
                o => o.Exception is EtcdException || (o.Exception is null && o.Result is null),
                _client.Options.TimeProvider, Random.Shared,
                async o =>
                {
                    if (o.Exception is EtcdException e)
                    {
                        CampaignFailed?.Invoke(e);
                    }
                    await DropKeeperAsync(revoke: true).ConfigureAwait(false);
                });
            var won = await campaign.ExecuteAsync(async token =>
            {
                var keeper = await GrantAsync(token).ConfigureAwait(false);
                await ClaimAddressAsync(keeper, token).ConfigureAwait(false);
                return await CampaignWithLeaseAsync(keeper, token).ConfigureAwait(false);
            }, ct).ConfigureAwait(false);
            // Null only when the campaign was stopped while a lease was being lost.
            return won ?? throw new OperationCanceledException(ct);
        }
        catch
        {
            await DropKeeperAsync(revoke: true).ConfigureAwait(false);
            throw;
        }
        finally
        {
            lock (_gate)
            {
                _campaigning = false;
            }
        }
    }

    private async Task<LeaseKeeper> GrantAsync(CancellationToken ct)
    {
        // The lease of an earlier, lost leadership goes first (its keys with it).
        await DropKeeperAsync(revoke: true).ConfigureAwait(false);
        var keeper = await LeaseKeeper.GrantAsync(_client, _options.Ttl, _options.SafetyMargin, ct).ConfigureAwait(false);
        lock (_gate)
        {
            _keeper = keeper;
        }
        return keeper;
    }

    /// <summary>Tries to become leader with this lease; null when the lease was lost first.</summary>
    private async Task<Leadership?> CampaignWithLeaseAsync(LeaseKeeper keeper, CancellationToken ct)
    {
        var value = _self.Clone();
        value.Term = 0;
        while (!keeper.Lost.IsCancellationRequested)
        {
            var txn = new TxnRequest
            {
                Compare = { new Compare { Key = _leaderKey, Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = 0 } },
                Success = { new RequestOp { RequestPut = new PutRequest { Key = _leaderKey, Value = value.ToByteString(), Lease = keeper.LeaseId } } },
                Failure = { new RequestOp { RequestRange = new RangeRequest { Key = _leaderKey } } },
            };
            var response = await _client.TxnAsync(txn, ct).ConfigureAwait(false);
            long term;
            if (response.Succeeded)
            {
                term = response.Header.Revision;
            }
            else
            {
                var holder = response.Responses[0].ResponseRange.Kvs.FirstOrDefault();
                if (holder is not null && holder.Lease == keeper.LeaseId)
                {
                    // Our own earlier attempt was applied but its answer was lost.
                    term = holder.CreateRevision;
                }
                else
                {
                    await WaitForDeletionAsync(_leaderKey, response.Header.Revision + 1, keeper.Lost, ct).ConfigureAwait(false);
                    continue;
                }
            }
            return BecomeLeader(keeper, term);
        }
        return null;
    }

    private Leadership BecomeLeader(LeaseKeeper keeper, long term)
    {
        var leader = _self.Clone();
        leader.Term = (ulong)term;
        var leadership = CancellationTokenSource.CreateLinkedTokenSource(keeper.Lost);
        var fence = new RegistryFence(_options.LeaderKey, term, leadership.Token);
        bool changed;
        lock (_gate)
        {
            _leadership = leadership;
            _fence = fence;
            changed = !Same(_currentLeader, leader);
            _currentLeader = leader;
        }
        // When the lease goes, so does the leader key: followers will see it; this master forgets it now.
        leadership.Token.Register(() => OnLeadershipLost(fence));
        if (changed)
        {
            LeaderChanged?.Invoke(leader);
        }
        return new Leadership((ulong)term, leader, leadership.Token);
    }

    private void OnLeadershipLost(RegistryFence fence)
    {
        bool changed = false;
        lock (_gate)
        {
            if (_fence == fence && _currentLeader is { } l && (long)l.Term == fence.Term && l.Id == _self.Id)
            {
                _currentLeader = null;
                changed = true;
            }
        }
        if (changed)
        {
            LeaderChanged?.Invoke(null);
        }
    }

    /// <summary>Returns when <paramref name="key"/> is deleted at or after <paramref name="fromRevision"/>.</summary>
    private async Task WaitForDeletionAsync(ByteString key, long fromRevision, CancellationToken lost, CancellationToken ct)
    {
        using var both = CancellationTokenSource.CreateLinkedTokenSource(lost, ct);
        await using var watch = _client.Watch(key, startRevision: fromRevision);
        try
        {
            while (true)
            {
                var batch = await watch.ReadAsync(both.Token).ConfigureAwait(false);
                if (batch.Events.Any(e => e.Type == Mvccpb.Event.Types.EventType.Delete))
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (lost.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            // The lease was lost while waiting: the caller starts over.
        }
        catch (EtcdCompactedException)
        {
            // History gone: just try the transaction again.
        }
    }

    /// <inheritdoc />
    public async Task ResignAsync(CancellationToken cancellationToken)
    {
        CancellationTokenSource? leadership;
        lock (_gate)
        {
            leadership = _leadership;
            _leadership = null;
        }
        if (leadership is not null)
        {
            await leadership.CancelAsync().ConfigureAwait(false);
        }
        await DropKeeperAsync(revoke: true).ConfigureAwait(false);
    }

    private async Task DropKeeperAsync(bool revoke)
    {
        LeaseKeeper? keeper;
        lock (_gate)
        {
            keeper = _keeper;
            _keeper = null;
        }
        if (keeper is null)
        {
            return;
        }
        if (revoke)
        {
            try
            {
                // Revoking deletes the leader key (and the address claim) at once: followers take over
                // without waiting for the TTL.
                using var timeout = new CancellationTokenSource(_options.Ttl);
                await keeper.RevokeAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is EtcdException or OperationCanceledException)
            {
                // The lease expires on its own.
            }
        }
        await keeper.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Resigns (best effort) and stops watching the leader.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }
        await ResignAsync(CancellationToken.None).ConfigureAwait(false);
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _observer.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static bool Same(MasterInfo? a, MasterInfo? b) =>
        a is null ? b is null : b is not null && a.Id == b.Id && a.Term == b.Term && a.Address == b.Address;
}
