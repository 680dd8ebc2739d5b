using Google.Protobuf;
using Scheduler.FrameworkSdk;
using Grpc.Core;
using Scheduler.Channels;

namespace Scheduler.Cli;

/// <summary>
/// The CLI's connection to the masters: follows leader redirects, tries every configured master,
/// and turns failures into one-line <see cref="CliException"/>s.
/// </summary>
public sealed class MasterConnection : IDisposable
{
    private readonly MasterDirectory _masters;

    public MasterConnection(IReadOnlyList<string> masters, TimeSpan? timeout = null, Scheduler.Channels.GrpcChannelSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(masters);
        Addresses = masters;
        Settings = settings ?? new Scheduler.Channels.GrpcChannelSettings();
        _masters = new MasterDirectory(masters, Settings);
        Timeout = timeout ?? TimeSpan.FromSeconds(10);
    }

    /// <summary>The channel settings (credentials, TLS) of this connection, for other servers of the cluster.</summary>
    public Scheduler.Channels.GrpcChannelSettings Settings { get; }

    public IReadOnlyList<string> Addresses { get; }

    public TimeSpan Timeout { get; }

    /// <summary>The master that answered last (the leader).</summary>
    public string Current => _masters.Current;

    public MasterDirectory Directory => _masters;

    public static string Unreachable(IEnumerable<string> masters) =>
        $"cannot reach the master at {string.Join(",", masters)}: is it running? (schedctl dev up)";

    /// <summary>Calls the leader; throws <see cref="CliException"/> when no master can be reached
    /// or the call fails.</summary>
    public async Task<TResponse> CallAsync<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request, CancellationToken cancellationToken)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(method);
        RpcException? last = null;
        for (var attempt = 0; attempt < Addresses.Count + 1; attempt++)
        {
            try
            {
                return await _masters.CallAsync(method, request, Timeout, cancellationToken);
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
            {
                last = e;
                _masters.FollowLeader(MasterDirectory.LeaderHint(e));
            }
            catch (RpcException e)
            {
                // A TLS mismatch may also end a call with INTERNAL (the connection closed mid-handshake).
                if (e.StatusCode == StatusCode.Internal && await TransportProbe.ExplainAsync(_masters.Current, Settings.Tls is not null, e) is { } why)
                {
                    throw new CliException("cannot reach the master: " + why);
                }
                throw Describe(method, e, _masters.Current);
            }
        }
        if (last is not null && MasterDirectory.LeaderHint(last) is not null)
        {
            throw new CliException($"no master at {string.Join(",", Addresses)} is the leader right now ({last.Status.Detail}); retry in a few seconds");
        }
        throw new CliException(await UnreachableAsync(Addresses, Settings.Tls is not null, last));
    }

    /// <summary><see cref="Unreachable"/>, or the transport problem when that is why (a TLS
    /// server called without a CA, say; see <see cref="TransportProbe"/>).</summary>
    public static async Task<string> UnreachableAsync(IReadOnlyList<string> masters, bool clientUsesTls, RpcException? last)
    {
        ArgumentNullException.ThrowIfNull(masters);
        foreach (var master in masters)
        {
            if (await TransportProbe.ExplainAsync(master, clientUsesTls, last) is { } why)
            {
                return "cannot reach the master: " + why;
            }
        }
        return Unreachable(masters);
    }

    public void Dispose() => _masters.Dispose();

    /// <summary>A one-line error for a failed call to <paramref name="address"/>.</summary>
    public static CliException Describe(IMethod method, RpcException e, string? address = null)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(e);
        var detail = string.IsNullOrWhiteSpace(e.Status.Detail) ? e.StatusCode.ToString() : e.Status.Detail;
        return e.StatusCode switch
        {
            StatusCode.InvalidArgument or StatusCode.OutOfRange => CliException.BadInput(detail),
            StatusCode.NotFound => new CliException(detail),
            StatusCode.Unauthenticated => new CliException($"{address ?? "the master"} refused the call: {detail}"),
            StatusCode.PermissionDenied => new CliException($"permission denied: {detail}"),
            StatusCode.Unimplemented when method.ServiceName == "sched.v1.Operator" && e.Status.Detail.Contains("Service is unimplemented", StringComparison.OrdinalIgnoreCase) =>
                new CliException($"{address ?? "the server"} answers gRPC but is not a master (an agent's port? masters listen on 5050 by default): check --master or SCHED_MASTER"),
            StatusCode.Unimplemented => new CliException($"{address ?? "the master"} does not serve {method.FullName}: is --master pointing at a master of an older version, or at another service?"),
            StatusCode.Internal or StatusCode.Unavailable when e.Status.Detail.Contains("SSL connection could not be established", StringComparison.OrdinalIgnoreCase) =>
                new CliException(e.Status.Detail.Contains("certificate", StringComparison.OrdinalIgnoreCase)
                    ? TransportProbe.UntrustedCertificate(address ?? "the server")
                    : $"could not start TLS with {address ?? "the server"} ({e.Status.Detail}): does it serve TLS? For a cluster run without TLS (dev up --insecure) leave out --tls-ca and SCHED_TLS_CA"),
            StatusCode.Internal when e.Status.Detail.Contains("HTTP/1", StringComparison.OrdinalIgnoreCase) || e.Status.Detail.Contains("Bad gRPC response", StringComparison.OrdinalIgnoreCase) =>
                new CliException($"{address ?? "the server"} is not a gRPC master ({e.Status.Detail}): check --master or SCHED_MASTER (masters listen on 5050 by default)"),
            _ => new CliException($"{method.Name}: {detail} ({e.StatusCode})"),
        };
    }
}
