using System.Text;
using Google.Protobuf;
using Scheduler.Etcd.V3;
using Scheduler.Rpc;

namespace Scheduler.Etcd;

/// <summary>
/// A client of an etcd v3 cluster over gRPC (src/Rpc). Requests go to one member at a time; when it
/// is unreachable or answers UNAVAILABLE (no leader, leader changed, timeout) the next member is
/// tried, with jittered backoff after every member failed, until <see cref="EtcdClientOptions.RequestTimeout"/>.
/// Thread-safe; share one per process.
/// </summary>
/// <remarks>
/// A retried Put or Txn may be applied twice when the first attempt reached etcd but its answer
/// was lost. Callers write idempotently (whole values, guarded transactions) so that is harmless.
/// </remarks>
public sealed class EtcdClient : IDisposable
{
    /// <summary>Metadata asking a member to fail streams while it has no raft leader (etcd's "require leader").</summary>
    internal const string RequireLeaderKey = "hasleader";

    private readonly Endpoint[] _endpoints;
    private readonly SemaphoreSlim _authGate = new(1, 1);
    private int _current;
    private string? _token;
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
        Options = options;
        var channelOptions = new RpcChannelOptions
        {
            ConnectTimeout = options.ConnectTimeout,
            ServerCertificateValidation = options.ServerCertificateValidation,
            // etcd's default maximum request is 1.5 MiB; responses (Range pages) may be larger.
            MaxReceiveMessageSize = 64 * 1024 * 1024,
            MaxSendMessageSize = 8 * 1024 * 1024,
            KeepAlivePingDelay = TimeSpan.FromSeconds(5),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(3),
        };
        _endpoints = options.Endpoints.Select(e => new Endpoint(e, RpcChannel.ForAddress(e, channelOptions))).ToArray();
        _current = options.ShuffleEndpoints ? Random.Shared.Next(_endpoints.Length) : 0;
    }

    public EtcdClientOptions Options { get; }

    /// <summary>The endpoints, as given.</summary>
    public IReadOnlyList<string> Endpoints => _endpoints.Select(e => e.Address).ToArray();

    internal TimeProvider Time => Options.TimeProvider;

    /// <summary>The endpoint requests currently go to.</summary>
    public string CurrentEndpoint => _endpoints[Volatile.Read(ref _current)].Address;

    public Task<RangeResponse> RangeAsync(RangeRequest request, CancellationToken cancellationToken = default) =>
        CallAsync(EtcdMethods.Range, request, cancellationToken);

    public Task<PutResponse> PutAsync(PutRequest request, CancellationToken cancellationToken = default) =>
        CallAsync(EtcdMethods.Put, request, cancellationToken);

    public Task<DeleteRangeResponse> DeleteRangeAsync(DeleteRangeRequest request, CancellationToken cancellationToken = default) =>
        CallAsync(EtcdMethods.DeleteRange, request, cancellationToken);

    public Task<TxnResponse> TxnAsync(TxnRequest request, CancellationToken cancellationToken = default) =>
        CallAsync(EtcdMethods.Txn, request, cancellationToken);

    public Task<CompactionResponse> CompactAsync(long revision, CancellationToken cancellationToken = default) =>
        CallAsync(EtcdMethods.Compact, new CompactionRequest { Revision = revision, Physical = true }, cancellationToken);

    public Task<LeaseGrantResponse> LeaseGrantAsync(TimeSpan ttl, CancellationToken cancellationToken = default) =>
        CallAsync(EtcdMethods.LeaseGrant, new LeaseGrantRequest { TTL = (long)Math.Ceiling(ttl.TotalSeconds) }, cancellationToken);

    public Task<LeaseRevokeResponse> LeaseRevokeAsync(long leaseId, CancellationToken cancellationToken = default) =>
        CallAsync(EtcdMethods.LeaseRevoke, new LeaseRevokeRequest { ID = leaseId }, cancellationToken);

    public Task<LeaseTimeToLiveResponse> LeaseTimeToLiveAsync(long leaseId, CancellationToken cancellationToken = default) =>
        CallAsync(EtcdMethods.LeaseTimeToLive, new LeaseTimeToLiveRequest { ID = leaseId }, cancellationToken);

    /// <summary>Status of the member currently used (version, raft leader, revision).</summary>
    public Task<StatusResponse> StatusAsync(CancellationToken cancellationToken = default) =>
        CallAsync(EtcdMethods.Status, new StatusRequest(), cancellationToken);

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

    /// <summary>
    /// Calls a unary method with failover between endpoints. Throws
    /// <see cref="EtcdUnavailableException"/> when no endpoint answered in time, and
    /// <see cref="EtcdException"/> for errors etcd answers (bad request, permission denied…).
    /// </summary>
    public async Task<TResponse> CallAsync<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request, CancellationToken cancellationToken = default)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(method);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var start = Time.GetTimestamp();
        var backoff = new Backoff(Options.InitialBackoff, Options.MaxBackoff);
        var failures = 0;
        var reauthenticated = false;
        Exception? last = null;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var index = Volatile.Read(ref _current);
            var endpoint = _endpoints[index];
            var remaining = Options.RequestTimeout - Time.GetElapsedTime(start);
            if (remaining <= TimeSpan.Zero)
            {
                throw Unavailable(method.Name, last);
            }
            var attempt = remaining < Options.AttemptTimeout ? remaining : Options.AttemptTimeout;
            try
            {
                var headers = await HeadersAsync(method, requireLeader: false, cancellationToken).ConfigureAwait(false);
                using var call = endpoint.Channel.AsyncUnaryCall(method, request, new CallOptions(headers, DateTime.UtcNow + attempt, cancellationToken));
                return await call.ResponseAsync.ConfigureAwait(false);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unauthenticated && Options.Username is not null && !reauthenticated
                && !ReferenceEquals(method, EtcdMethods.Authenticate))
            {
                // The token expired (simple tokens time out) or a member restarted: log in again, once.
                reauthenticated = true;
                Interlocked.Exchange(ref _token, null);
                last = e;
                continue;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested && IsTransient(e))
            {
                last = e;
            }
            catch (RpcException e) when (cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException($"etcd {method.Name} was cancelled.", e, cancellationToken);
            }
            catch (RpcException e)
            {
                throw new EtcdException($"etcd {method.Name} failed on {endpoint.Address}: {e.Status.Detail} ({e.StatusCode}).", e);
            }
            ReportFailure(index);
            failures++;
            if (failures % _endpoints.Length == 0)
            {
                var delay = backoff.Next();
                var left = Options.RequestTimeout - Time.GetElapsedTime(start);
                if (left <= TimeSpan.Zero)
                {
                    throw Unavailable(method.Name, last);
                }
                await Task.Delay(delay < left ? delay : left, Time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Opens a bidirectional stream on the current endpoint (auth token and require-leader set).</summary>
    internal async Task<(AsyncDuplexStreamingCall<TRequest, TResponse> Call, int Endpoint)> OpenDuplexAsync<TRequest, TResponse>(
        Method<TRequest, TResponse> method, CancellationToken cancellationToken)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var index = Volatile.Read(ref _current);
        var headers = await HeadersAsync(method, requireLeader: true, cancellationToken).ConfigureAwait(false);
        return (_endpoints[index].Channel.AsyncDuplexStreamingCall(method, new CallOptions(headers, null, cancellationToken)), index);
    }

    internal string EndpointAddress(int index) => _endpoints[index].Address;

    /// <summary>Moves the following requests to the next endpoint, unless another caller already did.</summary>
    internal void ReportFailure(int index) =>
        Interlocked.CompareExchange(ref _current, (index + 1) % _endpoints.Length, index);

    /// <summary>Forgets the auth token (after an Unauthenticated answer on a stream).</summary>
    internal void InvalidateToken() => Interlocked.Exchange(ref _token, null);

    /// <summary>UNAVAILABLE and connection failures; a per-attempt deadline too (the member may be stuck).</summary>
    internal static bool IsTransient(Exception e) => e switch
    {
        RpcException r => r.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Unknown or StatusCode.Internal
            || (r.StatusCode == StatusCode.Cancelled && r.Status.Detail.Contains("closing", StringComparison.OrdinalIgnoreCase)),
        HttpRequestException or IOException or TimeoutException or OperationCanceledException => true,
        _ => false,
    };

    private EtcdUnavailableException Unavailable(string what, Exception? last) => new(
        $"etcd is unavailable: {what} got no answer within {Options.RequestTimeout.TotalSeconds:0.#} s from any of {string.Join(", ", Endpoints)}" +
        (last is null ? "." : $" (last error: {Describe(last)}).") +
        " Check that etcd is running, reachable and has quorum.", last);

    internal static string Describe(Exception e) => e is RpcException r ? $"{r.StatusCode}: {r.Status.Detail}" : e.Message;

    private async ValueTask<Metadata?> HeadersAsync(IMethod method, bool requireLeader, CancellationToken cancellationToken)
    {
        Metadata? headers = null;
        if (requireLeader)
        {
            headers = new Metadata { { RequireLeaderKey, "true" } };
        }
        if (Options.Username is null || ReferenceEquals(method, EtcdMethods.Authenticate))
        {
            return headers;
        }
        var token = Volatile.Read(ref _token) ?? await AuthenticateAsync(cancellationToken).ConfigureAwait(false);
        headers ??= [];
        headers.Add("token", token);
        return headers;
    }

    private async Task<string> AuthenticateAsync(CancellationToken cancellationToken)
    {
        await _authGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Volatile.Read(ref _token) is { } token)
            {
                return token;
            }
            AuthenticateResponse response;
            try
            {
                response = await CallAsync(EtcdMethods.Authenticate, new AuthenticateRequest { Name = Options.Username, Password = Options.Password }, cancellationToken)
                    .ConfigureAwait(false);
            }
            catch (EtcdException e) when (e is not EtcdUnavailableException)
            {
                throw new EtcdException($"etcd refused the login of user '{Options.Username}': {e.Message} Check the user name and password.", e);
            }
            Volatile.Write(ref _token, response.Token);
            return response.Token;
        }
        finally
        {
            _authGate.Release();
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        foreach (var e in _endpoints)
        {
            e.Channel.Dispose();
        }
        _authGate.Dispose();
    }

    private sealed record Endpoint(string Address, RpcChannel Channel);

    /// <summary>The text of a key (UTF-8).</summary>
    public static string KeyText(ByteString key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Encoding.UTF8.GetString(key.Span);
    }
}
