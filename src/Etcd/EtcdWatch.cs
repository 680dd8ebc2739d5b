using System.Threading.Channels;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Mvccpb;

namespace Scheduler.Etcd;

/// <summary>One revision's worth of watch events (all events of a transaction arrive together).</summary>
/// <param name="Revision">The mod revision of the events.</param>
public sealed record EtcdWatchBatch(long Revision, IReadOnlyList<Event> Events);

/// <summary>
/// A watch of a key or range that survives member failures: when its stream breaks it reconnects
/// (next endpoint, jittered backoff) and resumes from the revision after the last one delivered, so
/// no event is lost or repeated. If that revision was compacted the watch ends with
/// <see cref="EtcdCompactedException"/> on <see cref="Batches"/> instead of silently skipping.
/// </summary>
/// <remarks>
/// The stream is dotnet-etcd's generated Watch client on one member. The library's own watch
/// manager resumes a broken stream too, but only on the same channel (one member here), without
/// telling its caller; moving to another member is this class's job.
/// </remarks>
public sealed class EtcdWatch : IAsyncDisposable
{
    private readonly EtcdClient _client;
    private readonly ByteString _key;
    private readonly ByteString _rangeEnd;
    private readonly bool _prevKv;
    private readonly Channel<EtcdWatchBatch> _batches = Channel.CreateUnbounded<EtcdWatchBatch>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly TaskCompletionSource<long> _created = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _nextRevision;
    private int _reconnects;
    private int _streams;
    private bool _confirmed;

    internal EtcdWatch(EtcdClient client, ByteString key, ByteString rangeEnd, long startRevision, bool prevKv)
    {
        _client = client;
        _key = key;
        _rangeEnd = rangeEnd;
        _prevKv = prevKv;
        _nextRevision = Math.Max(0, startRevision);
        _loop = Task.Run(RunAsync);
    }

    /// <summary>The events, in revision order. Completes with an exception when the watch cannot continue.</summary>
    public ChannelReader<EtcdWatchBatch> Batches => _batches.Reader;

    /// <summary>
    /// The next batch. Throws the watch's failure itself (<see cref="EtcdCompactedException"/>,
    /// <see cref="EtcdException"/>) when it cannot continue, and <see cref="ChannelClosedException"/>
    /// once it was disposed.
    /// </summary>
    public async ValueTask<EtcdWatchBatch> ReadAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await _batches.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException e) when (e.InnerException is { } inner)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(inner).Throw();
            throw;
        }
    }

    /// <summary>Completes with the first revision watched once etcd confirmed the watch.</summary>
    public Task<long> Created => _created.Task;

    /// <summary>The revision the watch resumes from after a reconnect.</summary>
    public long NextRevision => Interlocked.Read(ref _nextRevision);

    /// <summary>How many times the stream was re-established (for tests and metrics).</summary>
    public int Reconnects => Volatile.Read(ref _reconnects);

    private async Task RunAsync()
    {
        var ct = _stop.Token;
        // Streams that broke before etcd confirmed them are retried with a growing backoff; one that
        // was confirmed and then broke starts the backoff over.
        var reconnect = _client.Backoff.Pipeline<bool>(o => o.Exception is null && !o.Result, _client.Time, Random.Shared);
        Exception? failure = null;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await reconnect.ExecuteAsync(WatchOnceAsync, ct).ConfigureAwait(false);
                await Task.Delay(_client.Backoff.Delay(0, Random.Shared), _client.Time, ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            failure = e;
        }
        _created.TrySetException(failure ?? new OperationCanceledException("The watch was disposed."));
        _batches.Writer.TryComplete(failure);
    }

    /// <summary>Opens one stream on the current member and reads it until it breaks. Returns whether
    /// etcd had confirmed it; throws what cannot be resumed elsewhere.</summary>
    private async ValueTask<bool> WatchOnceAsync(CancellationToken ct)
    {
        if (_streams++ > 0)
        {
            Interlocked.Increment(ref _reconnects);
        }
        _confirmed = false;
        var endpoint = -1;
        try
        {
            var (call, index) = _client.OpenWatch(ct);
            endpoint = index;
            using (call)
            {
                await ReadStreamAsync(call, ct).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (!ct.IsCancellationRequested && (EtcdClient.IsTransient(e) || e is EtcdUnavailableException))
        {
            // Member down, no leader, connection reset: resume elsewhere from _nextRevision.
        }
        catch (RpcException e) when (!ct.IsCancellationRequested && e.StatusCode == StatusCode.Unauthenticated && _client.Options.Username is not null)
        {
            _client.RenewCredentials(endpoint);
        }
        if (endpoint >= 0)
        {
            _client.ReportFailure(endpoint);
        }
        return _confirmed;
    }

    private async Task ReadStreamAsync(AsyncDuplexStreamingCall<WatchRequest, WatchResponse> call, CancellationToken ct)
    {
        var create = new WatchCreateRequest
        {
            Key = _key,
            RangeEnd = _rangeEnd,
            StartRevision = NextRevision,
            PrevKv = _prevKv,
            ProgressNotify = true,
        };
        await call.RequestStream.WriteAsync(new WatchRequest { CreateRequest = create }, ct).ConfigureAwait(false);
        while (await call.ResponseStream.MoveNext(ct).ConfigureAwait(false))
        {
            var response = call.ResponseStream.Current;
            if (response.CompactRevision != 0)
            {
                throw new EtcdCompactedException(NextRevision, response.CompactRevision);
            }
            if (response.Canceled)
            {
                throw new EtcdException($"etcd cancelled the watch of '{EtcdClient.KeyText(_key)}': {response.CancelReason}");
            }
            if (response.Created)
            {
                if (NextRevision <= 0)
                {
                    // Watching "from now": the first event can only be after the creation revision.
                    Interlocked.Exchange(ref _nextRevision, response.Header.Revision + 1);
                }
                _created.TrySetResult(NextRevision);
                _confirmed = true;
                continue;
            }
            if (response.Events.Count > 0)
            {
                var revision = response.Events[^1].Kv.ModRevision;
                if (revision < NextRevision)
                {
                    // Already delivered before a reconnect (cannot happen when resuming at NextRevision; kept as a guard).
                    continue;
                }
                await _batches.Writer.WriteAsync(new EtcdWatchBatch(revision, response.Events.ToArray()), ct).ConfigureAwait(false);
                Interlocked.Exchange(ref _nextRevision, revision + 1);
            }
            else if (response.Header is { } header && header.Revision >= NextRevision)
            {
                // Progress notification: every event up to this revision has been sent.
                Interlocked.Exchange(ref _nextRevision, header.Revision + 1);
            }
        }
    }

    /// <summary>Stops the watch; <see cref="Batches"/> completes.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await _stop.CancelAsync().ConfigureAwait(false);
        }
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }
}
