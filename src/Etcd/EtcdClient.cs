using System.Text;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Mvccpb;
using Scheduler.Resilience;

namespace Scheduler.Etcd;

/// <summary>
/// A client of an etcd v3 cluster, on top of dotnet-etcd (one library client per member). Requests
/// go to one member at a time; when it is unreachable, does not answer within
/// <see cref="EtcdClientOptions.AttemptTimeout"/> or answers UNAVAILABLE (no leader, leader changed,
/// timeout), the next member is tried, with jittered backoff after every member failed, until
/// <see cref="EtcdClientOptions.RequestTimeout"/>. Thread-safe; share one per process.
/// </summary>
/// <remarks>
/// The member choice is ours rather than the library's load balancer: a paused or partitioned member
/// keeps an open connection, so a balancer keeps sending it a share of requests and streams, while
/// this client leaves a member as soon as one request to it fails, and the lease keeper and watches
/// can move their streams off it. A retried Put or Txn may be applied twice when the first attempt
/// reached etcd but its answer was lost; callers write idempotently (whole values, guarded
/// transactions) so that is harmless.
/// </remarks>
public sealed class EtcdClient : IDisposable
{
    /// <summary>Metadata asking a member to fail streams while it has no raft leader (etcd's "require leader").</summary>
    internal const string RequireLeaderKey = "hasleader";

    private readonly EtcdMember[] _members;
    private int _current;
    private bool _disposed;

    public EtcdClient(EtcdClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Endpoints.Count == 0)
        {
            throw new ArgumentException("No etcd endpoints given; pass at least one host:port (e.g. --etcd 127.0.0.1:2379).", nameof(options));
        }
        if ((options.Username is null) != (options.Password is null))
        {
            throw new ArgumentException("etcd authentication needs both a user name and a password.", nameof(options));
        }
        if (options.Username is not null && (string.IsNullOrWhiteSpace(options.Username) || string.IsNullOrWhiteSpace(options.Password)))
        {
            throw new ArgumentException("The etcd user name and password must not be empty; leave both unset to connect without authentication.", nameof(options));
        }
        Options = options;
        var members = new List<EtcdMember>();
        try
        {
            foreach (var endpoint in options.Endpoints)
            {
                members.Add(new EtcdMember(endpoint, options));
            }
        }
        catch
        {
            members.ForEach(m => m.Dispose());
            throw;
        }
        _members = [.. members];
        _current = options.ShuffleEndpoints ? Random.Shared.Next(_members.Length) : 0;
    }

    public EtcdClientOptions Options { get; }

    /// <summary>The endpoints, as given.</summary>
    public IReadOnlyList<string> Endpoints => _members.Select(m => m.Address).ToArray();

    internal TimeProvider Time => Options.TimeProvider;

    /// <summary>The wait after every member failed once (<see cref="EtcdClientOptions.InitialBackoff"/>
    /// doubling to <see cref="EtcdClientOptions.MaxBackoff"/>, jittered).</summary>
    internal Backoff Backoff => new(Options.InitialBackoff, Options.MaxBackoff);

    /// <summary>The endpoint requests currently go to.</summary>
    public string CurrentEndpoint => _members[Volatile.Read(ref _current)].Address;

    public Task<RangeResponse> RangeAsync(RangeRequest request, CancellationToken cancellationToken = default) =>
        CallAsync("Range", (etcd, deadline, ct) => etcd.GetAsync(request, null, deadline, ct), cancellationToken);

    public Task<PutResponse> PutAsync(PutRequest request, CancellationToken cancellationToken = default) =>
        CallAsync("Put", (etcd, deadline, ct) => etcd.PutAsync(request, null, deadline, ct), cancellationToken);

    public Task<DeleteRangeResponse> DeleteRangeAsync(DeleteRangeRequest request, CancellationToken cancellationToken = default) =>
        CallAsync("DeleteRange", (etcd, deadline, ct) => etcd.DeleteAsync(request, null, deadline, ct), cancellationToken);

    public Task<TxnResponse> TxnAsync(TxnRequest request, CancellationToken cancellationToken = default) =>
        CallAsync("Txn", (etcd, deadline, ct) => etcd.TransactionAsync(request, null, deadline, ct), cancellationToken);

    public Task<CompactionResponse> CompactAsync(long revision, CancellationToken cancellationToken = default) =>
        CallAsync("Compact", (etcd, deadline, ct) => etcd.CompactAsync(new CompactionRequest { Revision = revision, Physical = true }, null, deadline, ct), cancellationToken);

    public Task<LeaseGrantResponse> LeaseGrantAsync(TimeSpan ttl, CancellationToken cancellationToken = default) =>
        CallAsync("LeaseGrant", (etcd, deadline, ct) => etcd.LeaseGrantAsync(new LeaseGrantRequest { TTL = (long)Math.Ceiling(ttl.TotalSeconds) }, null, deadline, ct), cancellationToken);

    public Task<LeaseRevokeResponse> LeaseRevokeAsync(long leaseId, CancellationToken cancellationToken = default) =>
        CallAsync("LeaseRevoke", (etcd, deadline, ct) => etcd.LeaseRevokeAsync(new LeaseRevokeRequest { ID = leaseId }, null, deadline, ct), cancellationToken);

    public Task<LeaseTimeToLiveResponse> LeaseTimeToLiveAsync(long leaseId, CancellationToken cancellationToken = default) =>
        CallAsync("LeaseTimeToLive", (etcd, deadline, ct) => etcd.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = leaseId }, null, deadline, ct), cancellationToken);

    /// <summary>Status of the member currently used (version, raft leader, revision).</summary>
    public Task<StatusResponse> StatusAsync(CancellationToken cancellationToken = default) =>
        CallAsync("Status", (etcd, deadline, ct) => etcd.StatusAsync(new StatusRequest(), null, deadline, ct), cancellationToken);

    /// <summary>The value of one key, or null.</summary>
    public async Task<KeyValue?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        var response = await RangeAsync(new RangeRequest { Key = Key(key) }, cancellationToken).ConfigureAwait(false);
        return response.Kvs.Count == 0 ? null : response.Kvs[0];
    }

    public Task<PutResponse> PutAsync(string key, string value, long lease = 0, CancellationToken cancellationToken = default) =>
        PutAsync(new PutRequest { Key = Key(key), Value = ByteString.CopyFromUtf8(value), Lease = lease }, cancellationToken);

    /// <summary>Starts a watch of <paramref name="key"/> (or the range up to <paramref name="rangeEnd"/>) from <paramref name="startRevision"/> (0 = now).</summary>
    public EtcdWatch Watch(ByteString key, ByteString? rangeEnd = null, long startRevision = 0, bool prevKv = false) =>
        new(this, key, rangeEnd ?? ByteString.Empty, startRevision, prevKv);

    /// <summary>The key as bytes (UTF-8).</summary>
    public static ByteString Key(string key) => ByteString.CopyFromUtf8(key);

    /// <summary>The range end that selects every key starting with <paramref name="prefix"/>.</summary>
    public static ByteString PrefixEnd(ByteString prefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        var end = prefix.ToByteArray();
        for (var i = end.Length - 1; i >= 0; i--)
        {
            if (end[i] < 0xFF)
            {
                end[i]++;
                return ByteString.CopyFrom(end, 0, i + 1);
            }
        }
        // All 0xFF (or empty): every key from the prefix on.
        return ByteString.CopyFrom(0);
    }

    /// <summary>The text of a key (UTF-8).</summary>
    public static string KeyText(ByteString key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Encoding.UTF8.GetString(key.Span);
    }

    /// <summary>
    /// Calls one unary method of the dotnet-etcd client of a member, with failover between members.
    /// <paramref name="call"/> gets the member's client, the deadline of this attempt and the token,
    /// and must pass both on. Throws <see cref="EtcdUnavailableException"/> when no member answered
    /// in time, and <see cref="EtcdException"/> for errors etcd answers (bad request, permission
    /// denied…), which are not retried.
    /// </summary>
    /// <param name="method">The etcd method's name, for error messages.</param>
    public async Task<TResponse> CallAsync<TResponse>(string method, Func<dotnet_etcd.EtcdClient, DateTime, CancellationToken, Task<TResponse>> call,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(call);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var start = Time.GetTimestamp();
        var failures = 0;
        var rounds = 0;
        var reauthenticated = false;
        Exception? last = null;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var index = Volatile.Read(ref _current);
            var member = _members[index];
            var remaining = Options.RequestTimeout - Time.GetElapsedTime(start);
            if (remaining <= TimeSpan.Zero)
            {
                throw Unavailable(method, last);
            }
            var attempt = remaining < Options.AttemptTimeout ? remaining : Options.AttemptTimeout;
            try
            {
                return await call(member.Client, DateTime.UtcNow + attempt, cancellationToken).ConfigureAwait(false);
            }
            catch (RpcException e) when (IsLoginRefused(e))
            {
                throw new EtcdException($"etcd refused the login of user '{Options.Username}' on {member.Address}: {e.Status.Detail} Check the user name and password.", e);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unauthenticated && Options.Username is not null && !reauthenticated)
            {
                // The token expired (simple tokens time out) or the member restarted: log in again, once.
                reauthenticated = true;
                member.RenewCredentials(Options);
                last = e;
                continue;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested && IsTransient(e))
            {
                last = e;
            }
            catch (Exception e) when (cancellationToken.IsCancellationRequested && e is RpcException or OperationCanceledException)
            {
                throw new OperationCanceledException($"etcd {method} was cancelled.", e, cancellationToken);
            }
            catch (RpcException e)
            {
                throw new EtcdException($"etcd {method} failed on {member.Address}: {e.Status.Detail} ({e.StatusCode}).", e);
            }
            ReportFailure(index);
            failures++;
            if (failures % _members.Length == 0)
            {
                var delay = Backoff.Delay(rounds++, Random.Shared);
                var left = Options.RequestTimeout - Time.GetElapsedTime(start);
                if (left <= TimeSpan.Zero)
                {
                    throw Unavailable(method, last);
                }
                await Task.Delay(delay < left ? delay : left, Time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Opens a watch stream on the current member (require-leader set; the library adds the auth token).</summary>
    internal (AsyncDuplexStreamingCall<WatchRequest, WatchResponse> Call, int Member) OpenWatch(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var index = Volatile.Read(ref _current);
        var call = _members[index].Client.GetConnection().WatchClient.Watch(RequireLeader(), null, cancellationToken);
        return (call, index);
    }

    /// <summary>
    /// Sends one keepalive of <paramref name="leaseId"/> through the current member and returns the
    /// TTL it answered (≤ 0: the lease is gone). When no answer comes within <paramref name="timeout"/>
    /// or the member fails, the following requests move to the next member and the error is thrown.
    /// </summary>
    internal async Task<long> KeepAliveOnceAsync(long leaseId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var index = Volatile.Read(ref _current);
        var member = _members[index];
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var ttl = long.MinValue;
        // The library sends the request, half-closes the stream and hands each answer to the callback
        // until etcd ends the stream (right after answering).
        var keepAlive = member.Client.LeaseKeepAlive(new LeaseKeepAliveRequest { ID = leaseId }, r => Interlocked.Exchange(ref ttl, r.TTL), attempt.Token, RequireLeader());
        try
        {
            // The wait is bounded here, not only by cancelling the call: on a stuck member even a
            // cancelled call may take long to unwind, and the next member must be tried now.
            await keepAlive.WaitAsync(timeout, Time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            if (e is RpcException { StatusCode: StatusCode.Unauthenticated })
            {
                member.RenewCredentials(Options);
            }
            ReportFailure(index);
            throw e is TimeoutException
                ? new TimeoutException($"No keepalive answer from {member.Address} within {timeout.TotalMilliseconds:0} ms.")
                : new EtcdException($"The keepalive of lease {leaseId:x} through {member.Address} failed: {Describe(e)}", e);
        }
        finally
        {
            if (!keepAlive.IsCompleted)
            {
                // Abandoned: end the stream; its outcome is the stream's, not ours.
                await attempt.CancelAsync().ConfigureAwait(false);
                _ = keepAlive.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            }
        }
        var answered = Interlocked.Read(ref ttl);
        if (answered == long.MinValue)
        {
            ReportFailure(index);
            throw new EtcdException($"{member.Address} ended the keepalive of lease {leaseId:x} without an answer.");
        }
        return answered;
    }

    private static Metadata RequireLeader() => new() { { RequireLeaderKey, "true" } };

    /// <summary>Moves the following requests to the next member, unless another caller already did.</summary>
    internal void ReportFailure(int index) =>
        Interlocked.CompareExchange(ref _current, (index + 1) % _members.Length, index);

    /// <summary>Makes member <paramref name="index"/> log in again (after an Unauthenticated answer on a stream).</summary>
    internal void RenewCredentials(int index) => _members[index].RenewCredentials(Options);

    /// <summary>UNAVAILABLE and connection failures; a per-attempt deadline too (the member may be stuck).</summary>
    internal static bool IsTransient(Exception e) => e switch
    {
        RpcException r => r.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Unknown or StatusCode.Internal
            || (r.StatusCode == StatusCode.Cancelled && r.Status.Detail.Contains("closing", StringComparison.OrdinalIgnoreCase)),
        HttpRequestException or IOException or TimeoutException or OperationCanceledException => true,
        _ => false,
    };

    /// <summary>
    /// The library logs in on the first request (and after a token expired) inside the call itself;
    /// a refused log-in surfaces as that call's error, carrying etcd's "authentication failed".
    /// </summary>
    private bool IsLoginRefused(RpcException e) =>
        Options.Username is not null && e.Status.Detail.Contains("authentication failed", StringComparison.OrdinalIgnoreCase);

    private EtcdUnavailableException Unavailable(string what, Exception? last) => new(
        $"etcd is unavailable: {what} got no answer within {Options.RequestTimeout.TotalSeconds:0.#} s from any of {string.Join(", ", Endpoints)}" +
        (last is null ? "." : $" (last error: {Describe(last)}).") +
        " Check that etcd is running, reachable and has quorum.", last);

    internal static string Describe(Exception e) => e is RpcException r ? $"{r.StatusCode}: {r.Status.Detail}" : e.Message;

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        foreach (var m in _members)
        {
            m.Dispose();
        }
    }
}
