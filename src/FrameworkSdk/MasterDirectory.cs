using Grpc.Net.Client;
using System.Collections.Concurrent;
using Scheduler.Protocol;
using Scheduler.Protocol.Masters;
using Grpc.Core;
using Scheduler.Channels;

namespace Scheduler.FrameworkSdk;

/// <summary>
/// The masters a client knows and which one it talks to: starts with the first configured one,
/// follows leader hints, and otherwise cycles through the list (the rules of
/// <see cref="MasterRotation"/>). Keeps one channel per address. Thread-safe.
/// </summary>
public sealed class MasterDirectory : IDisposable
{
    private readonly MasterRotation _rotation;
    private readonly ConcurrentDictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);
    private readonly GrpcChannelSettings? _channelOptions;
    private readonly Lock _lock = new();

    /// <summary>Creates a directory over <paramref name="masters"/> (at least one <c>host:port</c>).</summary>
    /// <param name="masters">The configured master addresses.</param>
    /// <param name="channelOptions">Options for the channels; null for defaults.</param>
    public MasterDirectory(IEnumerable<string> masters, GrpcChannelSettings? channelOptions = null)
    {
        _rotation = new MasterRotation(masters);
        _channelOptions = channelOptions;
    }

    /// <summary>The address calls go to now (the leader, as far as the client knows).</summary>
    public string Current
    {
        get
        {
            lock (_lock)
            {
                return _rotation.Current;
            }
        }
    }

    /// <summary>The configured addresses.</summary>
    public IReadOnlyList<string> Configured => _rotation.Configured;

    /// <summary>The channel to <see cref="Current"/>.</summary>
    public GrpcChannel CurrentChannel => ChannelFor(Current);

    /// <summary>The (cached) channel to <paramref name="address"/>.</summary>
    /// <param name="address">A master's <c>host:port</c>.</param>
    public GrpcChannel ChannelFor(string address) =>
        _channels.GetOrAdd(address, a => GrpcChannels.ForAddress(a, _channelOptions));

    /// <summary>
    /// Moves to the leader named by a redirect (<c>sched-leader</c> trailer). Returns false (and
    /// moves to the next configured master instead) when the hint is empty or names the master
    /// that last failed to answer.
    /// </summary>
    /// <param name="leader">The hinted leader address, possibly empty.</param>
    public bool FollowLeader(string? leader)
    {
        lock (_lock)
        {
            return _rotation.Redirected(_rotation.Current, leader);
        }
    }

    /// <summary>Moves to the next configured master (after a connection failure, which is
    /// remembered so that a stale leader hint naming that master is not followed).</summary>
    public void MoveNext()
    {
        lock (_lock)
        {
            _rotation.Failed(_rotation.Current);
        }
    }

    /// <summary>A session with <paramref name="address"/> was established (the client subscribed):
    /// it is the current master, and earlier failures are forgotten, so that a later hint naming a
    /// master that failed before but has come back is followed.</summary>
    /// <param name="address">The master's <c>host:port</c>.</param>
    public void Connected(string address)
    {
        lock (_lock)
        {
            _rotation.Learned(address);
            _rotation.Connected();
        }
    }

    /// <summary>Sets the current master after learning it (e.g. from <c>Subscribed.master</c>).</summary>
    /// <param name="address">The leader's <c>host:port</c>.</param>
    public void SetCurrent(string address)
    {
        lock (_lock)
        {
            _rotation.Learned(address);
        }
    }

    /// <summary>The leader hint of a redirect (empty when the master knows no leader), or null when
    /// <paramref name="error"/> is not one.</summary>
    /// <param name="error">A failed call.</param>
    public static string? LeaderHint(RpcException error)
    {
        ArgumentNullException.ThrowIfNull(error);
        return NotLeader.Is(error, out var leader) ? leader ?? "" : null;
    }

    /// <summary>
    /// Runs a unary call against the current master, following up to <paramref name="maxRedirects"/>
    /// leader redirects. Other failures are thrown as <see cref="RpcException"/>.
    /// </summary>
    /// <typeparam name="TRequest">The request type.</typeparam>
    /// <typeparam name="TResponse">The response type.</typeparam>
    /// <param name="method">The method.</param>
    /// <param name="request">The request.</param>
    /// <param name="timeout">The deadline of each attempt.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <param name="maxRedirects">Redirects to follow before giving up.</param>
    public async Task<TResponse> CallAsync<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request, TimeSpan timeout, CancellationToken cancellationToken, int maxRedirects = 3)
        where TRequest : class, Google.Protobuf.IMessage<TRequest>
        where TResponse : class, Google.Protobuf.IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(method);
        for (var attempt = 0; ; attempt++)
        {
            var address = Current;
            try
            {
                using var call = ChannelFor(address).AsyncUnaryCall(method, request, new CallOptions(deadline: DateTime.UtcNow + timeout, cancellationToken: cancellationToken));
                return await call.ResponseAsync.ConfigureAwait(false);
            }
            catch (RpcException e) when (attempt < maxRedirects && LeaderHint(e) is { Length: > 0 } leader && !string.Equals(leader, address, StringComparison.Ordinal))
            {
                FollowLeader(leader);
            }
        }
    }

    /// <summary>Closes every channel.</summary>
    public void Dispose()
    {
        foreach (var channel in _channels.Values)
        {
            channel.Dispose();
        }
        _channels.Clear();
    }
}
