using Etcdserverpb;
using Google.Protobuf;
using Mvccpb;
using Sched.V1;
using Scheduler.Etcd;
using Scheduler.Resilience;

namespace Scheduler.Master.Election;

/// <summary>Two masters advertise the same address; the second refuses to campaign.</summary>
public sealed class MasterAddressConflictException(string message) : InvalidOperationException(message);

// Following the leader key, and the claim on this master's advertise address.
public sealed partial class EtcdLeaderElection
{
    /// <summary>The pause before reading the leader key again: 50 ms doubling to 1 s.</summary>
    private static readonly Backoff ObserverBackoff = new(TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(1)) { Jitter = 0 };

    private long _observedRevision;

    private async Task ObserveAsync()
    {
        var ct = _stop.Token;
        var failures = 0;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var read = await _client.RangeAsync(new RangeRequest { Key = _leaderKey }, ct).ConfigureAwait(false);
                Observe(read.Kvs.FirstOrDefault(), read.Header.Revision);
                _observed.TrySetResult();
                failures = 0;
                await using var watch = _client.Watch(_leaderKey, startRevision: read.Header.Revision + 1);
                while (true)
                {
                    var batch = await watch.ReadAsync(ct).ConfigureAwait(false);
                    foreach (var e in batch.Events)
                    {
                        Observe(e.Type == Mvccpb.Event.Types.EventType.Put ? e.Kv : null, e.Kv.ModRevision);
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (EtcdException)
            {
                // Unreachable, or history compacted: read the key again after a pause.
            }
            try
            {
                await Task.Delay(ObserverBackoff.Delay(failures++), _client.Options.TimeProvider, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Applies the leader key as of <paramref name="revision"/> (null = absent).</summary>
    private void Observe(KeyValue? kv, long revision)
    {
        MasterInfo? leader = null;
        if (kv is not null)
        {
            try
            {
                leader = MasterInfo.Parser.ParseFrom(kv.Value);
                leader.Term = (ulong)kv.CreateRevision;
            }
            catch (InvalidProtocolBufferException)
            {
                // Not a MasterInfo: some other writer; the leader is unknown.
            }
        }
        var changed = false;
        CancellationTokenSource? lose = null;
        lock (_gate)
        {
            if (revision < _observedRevision)
            {
                return;
            }
            _observedRevision = revision;
            if (_fence is { } fence && !fence.Lost.IsCancellationRequested && revision >= fence.Term
                && (kv is null || kv.CreateRevision != fence.Term))
            {
                // Our key was deleted or replaced (by an operator, or after the lease expired).
                lose = _leadership;
            }
            if (!Same(_currentLeader, leader))
            {
                _currentLeader = leader;
                changed = true;
            }
        }
        lose?.Cancel();
        if (changed)
        {
            LeaderChanged?.Invoke(leader);
        }
    }

    /// <summary>
    /// Claims this master's advertise address with the campaign lease. Another master holding it is
    /// waited for until its lease could have expired (a crashed earlier incarnation); if it is still
    /// there, it is alive and the campaign is refused.
    /// </summary>
    private async Task ClaimAddressAsync(LeaseKeeper keeper, CancellationToken ct)
    {
        var id = ByteString.CopyFromUtf8(_self.Id);
        var waited = false;
        while (true)
        {
            var response = await _client.TxnAsync(new TxnRequest
            {
                Compare = { new Compare { Key = _addressKey, Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = 0 } },
                Success = { new RequestOp { RequestPut = new PutRequest { Key = _addressKey, Value = id, Lease = keeper.LeaseId } } },
                Failure = { new RequestOp { RequestRange = new RangeRequest { Key = _addressKey } } },
            }, ct).ConfigureAwait(false);
            if (response.Succeeded)
            {
                return;
            }
            var holder = response.Responses[0].ResponseRange.Kvs.FirstOrDefault();
            if (holder is null)
            {
                continue;
            }
            if (holder.Value == id)
            {
                if (holder.Lease == keeper.LeaseId)
                {
                    return;
                }
                // Ours from an earlier lease of this process: move it to the current lease.
                var moved = await _client.TxnAsync(new TxnRequest
                {
                    Compare = { new Compare { Key = _addressKey, Target = Compare.Types.CompareTarget.Mod, Result = Compare.Types.CompareResult.Equal, ModRevision = holder.ModRevision } },
                    Success = { new RequestOp { RequestPut = new PutRequest { Key = _addressKey, Value = id, Lease = keeper.LeaseId } } },
                }, ct).ConfigureAwait(false);
                if (moved.Succeeded)
                {
                    return;
                }
                continue;
            }
            var other = holder.Value.ToStringUtf8();
            if (waited || holder.Lease == 0)
            {
                throw new MasterAddressConflictException(
                    $"Another master (id {other}) is running with the advertise address {_self.Address}. Each master needs its own " +
                    "--advertise address (host:port where it serves); stop the other master or change this one's address.");
            }
            // Wait until the holder's lease could have run out; if it was a crashed master, the claim goes.
            var ttl = await _client.LeaseTimeToLiveAsync(holder.Lease, ct).ConfigureAwait(false);
            var wait = TimeSpan.FromSeconds(Math.Max(0, ttl.TTL)) + _options.Ttl;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(wait);
            try
            {
                await WaitForDeletionAsync(_addressKey, response.Header.Revision + 1, keeper.Lost, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                waited = true;
            }
            if (keeper.Lost.IsCancellationRequested)
            {
                throw new EtcdLeaseLostException($"The campaign lease was lost while waiting for address {_self.Address}: {keeper.LostReason}");
            }
        }
    }
}
