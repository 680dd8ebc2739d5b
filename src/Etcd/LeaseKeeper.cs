using Grpc.Core;
using Scheduler.Resilience;

namespace Scheduler.Etcd;

/// <summary>
/// Keeps an etcd lease alive, renewing every TTL/3 through dotnet-etcd's LeaseKeepAlive, and
/// decides locally when the lease must be considered lost.
/// </summary>
/// <remarks>
/// Every renewal request records when it was sent; its answer proves the lease lives at least until
/// send time + TTL (etcd restarts the TTL when it processes the request, which is after we sent it).
/// If that bound minus <see cref="SafetyMargin"/> passes without a newer answer, <see cref="Lost"/>
/// is cancelled — before etcd can expire the lease, so a holder of something guarded by the lease
/// (leadership) stops before anyone else can get it. A renewal whose answer is overdue (member
/// paused or partitioned) is abandoned for the next endpoint. The library's own keep-alive loops
/// only report that they stopped, not when each renewal was sent and confirmed, which is what the
/// synchronous <see cref="Remaining"/> check needs; so the schedule and the bound are ours.
/// </remarks>
public sealed class LeaseKeeper : IAsyncDisposable
{
    private static readonly Backoff RenewalBackoff = new(TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(250));

    private readonly EtcdClient _client;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _lost = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly ITimer _watchdog;
    private readonly Task _loop;
    private long _validUntil;
    private string? _lostReason;
    private long _renewals;
    private DateTimeOffset? _lastRenewal;
    private Task _revokeOnLoss = Task.CompletedTask;

    private LeaseKeeper(EtcdClient client, long leaseId, TimeSpan ttl, TimeSpan margin, long grantSentAt)
    {
        _client = client;
        _time = client.Time;
        LeaseId = leaseId;
        Ttl = ttl;
        SafetyMargin = margin;
        _validUntil = grantSentAt + ToTicks(ttl);
        _watchdog = _time.CreateTimer(_ => CheckExpiry(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        ArmWatchdog();
        _loop = Task.Run(RunAsync);
    }

    public long LeaseId { get; }

    /// <summary>The TTL granted by etcd.</summary>
    public TimeSpan Ttl { get; }

    /// <summary>How long before the lease could expire on etcd it is considered lost here.</summary>
    public TimeSpan SafetyMargin { get; }

    /// <summary>Cancelled once the lease is (or may be) gone. Never un-cancelled.</summary>
    public CancellationToken Lost => _lost.Token;

    /// <summary>Why the lease was lost; null while it is kept.</summary>
    public string? LostReason
    {
        get
        {
            lock (_gate)
            {
                return _lostReason;
            }
        }
    }

    /// <summary>Successful renewals so far.</summary>
    public long Renewals => Interlocked.Read(ref _renewals);

    /// <summary>When the last renewal was answered (null before the first).</summary>
    public DateTimeOffset? LastRenewal
    {
        get
        {
            lock (_gate)
            {
                return _lastRenewal;
            }
        }
    }

    /// <summary>The time left until the lease is considered lost (zero once lost).</summary>
    public TimeSpan Remaining
    {
        get
        {
            lock (_gate)
            {
                var left = _validUntil - ToTicks(SafetyMargin) - _time.GetTimestamp();
                return _lost.IsCancellationRequested || left <= 0 ? TimeSpan.Zero : TimeSpan.FromTicks(left * TimeSpan.TicksPerSecond / _time.TimestampFrequency);
            }
        }
    }

    /// <summary>
    /// Grants a lease of <paramref name="ttl"/> (whole seconds; etcd may raise it to its minimum) and
    /// keeps it alive. <paramref name="safetyMargin"/> defaults to TTL/6 within [100 ms, 1 s].
    /// </summary>
    public static async Task<LeaseKeeper> GrantAsync(EtcdClient client, TimeSpan ttl, TimeSpan? safetyMargin = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        if (ttl < TimeSpan.FromSeconds(1))
        {
            throw new ArgumentOutOfRangeException(nameof(ttl), ttl, "An etcd lease TTL is at least 1 second.");
        }
        var sentAt = client.Time.GetTimestamp();
        var response = await client.LeaseGrantAsync(ttl, cancellationToken).ConfigureAwait(false);
        if (!string.IsNullOrEmpty(response.Error) || response.ID == 0)
        {
            throw new EtcdException($"etcd refused to grant a lease of {ttl.TotalSeconds:0.#} s: {response.Error}");
        }
        var granted = TimeSpan.FromSeconds(response.TTL);
        var margin = safetyMargin ?? TimeSpan.FromTicks(Math.Clamp(granted.Ticks / 6, TimeSpan.TicksPerMillisecond * 100, TimeSpan.TicksPerSecond));
        if (margin >= granted / 2)
        {
            throw new ArgumentOutOfRangeException(nameof(safetyMargin), margin, $"The safety margin must be under half the TTL ({granted.TotalSeconds} s).");
        }
        return new LeaseKeeper(client, response.ID, granted, margin, sentAt);
    }

    /// <summary>Stops renewing and revokes the lease (its keys are deleted at once); best effort.</summary>
    public async Task RevokeAsync(CancellationToken cancellationToken)
    {
        await StopAsync().ConfigureAwait(false);
        MarkLost("the lease was revoked");
        await _client.LeaseRevokeAsync(LeaseId, cancellationToken).ConfigureAwait(false);
    }

    private async Task RunAsync()
    {
        var ct = _stop.Token;
        var interval = Ttl / 3;
        // An answer normally takes milliseconds. One missing for half an interval means the member is
        // stuck (paused, partitioned, without raft leader): switch members early enough that a
        // renewal through another one still lands well before the watchdog's deadline.
        var answerTimeout = interval / 2;
        // A failed renewal moved the client to the next member; it is retried there after a short
        // backoff until the lease is lost (the watchdog decides when it is too late).
        var renew = RenewalBackoff.Pipeline<long>(o => o.Exception is not null, _time, Random.Shared);
        using var renewing = CancellationTokenSource.CreateLinkedTokenSource(ct, _lost.Token);
        while (!ct.IsCancellationRequested && !_lost.IsCancellationRequested)
        {
            long sentAt = 0;
            long ttl;
            try
            {
                // One keepalive stream per renewal (dotnet-etcd's LeaseKeepAlive with a callback): its
                // single answer renews the lease for a TTL counted from no earlier than sentAt.
                ttl = await renew.ExecuteAsync(async token =>
                {
                    sentAt = _time.GetTimestamp();
                    return await _client.KeepAliveOnceAsync(LeaseId, answerTimeout, token).ConfigureAwait(false);
                }, renewing.Token).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Stopped, or the lease was lost while retrying.
                return;
            }
            if (ttl <= 0)
            {
                MarkLost($"etcd lease {LeaseId:x} expired or was revoked (keepalive answered TTL {ttl}).");
                return;
            }
            Renewed(sentAt + ToTicks(Ttl));
            var rest = interval - _time.GetElapsedTime(sentAt);
            if (rest > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(rest, _time, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private void Renewed(long validUntil)
    {
        lock (_gate)
        {
            if (_lost.IsCancellationRequested)
            {
                return;
            }
            if (validUntil > _validUntil)
            {
                _validUntil = validUntil;
            }
            Interlocked.Increment(ref _renewals);
            _lastRenewal = _time.GetUtcNow();
            ArmWatchdog();
        }
    }

    private void ArmWatchdog()
    {
        var due = _validUntil - ToTicks(SafetyMargin) - _time.GetTimestamp();
        _watchdog.Change(due <= 0 ? TimeSpan.Zero : TimeSpan.FromTicks(due * TimeSpan.TicksPerSecond / _time.TimestampFrequency), Timeout.InfiniteTimeSpan);
    }

    private void CheckExpiry()
    {
        lock (_gate)
        {
            var due = _validUntil - ToTicks(SafetyMargin) - _time.GetTimestamp();
            if (due > 0)
            {
                ArmWatchdog();
                return;
            }
        }
        MarkLost($"no keepalive of lease {LeaseId:x} was confirmed in time; it may expire within {SafetyMargin.TotalMilliseconds:0} ms");
        // Whatever the lease guards is given up now: revoke it (best effort) so that the guarded keys
        // go at once instead of when the lease expires, and a successor need not wait.
        lock (_gate)
        {
            _revokeOnLoss = RevokeQuietlyAsync();
        }
    }

    private async Task RevokeQuietlyAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(Ttl);
            await _client.LeaseRevokeAsync(LeaseId, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is EtcdException or RpcException or OperationCanceledException or ObjectDisposedException)
        {
            // The lease expires on its own.
        }
    }

    private void MarkLost(string reason)
    {
        lock (_gate)
        {
            if (_lostReason is not null)
            {
                return;
            }
            _lostReason = reason;
        }
        _watchdog.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _lost.Cancel();
    }

    private async Task StopAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await _stop.CancelAsync().ConfigureAwait(false);
        }
        await _loop.ConfigureAwait(false);
    }

    private long ToTicks(TimeSpan span) => (long)(span.TotalSeconds * _time.TimestampFrequency);

    /// <summary>Stops renewing (the lease then expires on its own after its TTL; use <see cref="RevokeAsync"/> to end it at once).</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        MarkLost("the lease keeper was disposed");
        await _watchdog.DisposeAsync().ConfigureAwait(false);
        Task revoke;
        lock (_gate)
        {
            revoke = _revokeOnLoss;
        }
        await revoke.ConfigureAwait(false);
    }
}
