using System.Net;

namespace Scheduler.Rpc;

/// <summary>
/// A gRPC server on Kestrel serving the methods of a <see cref="ServiceRegistry"/>.
/// Unknown paths answer UNIMPLEMENTED; handler exceptions other than <see cref="RpcException"/>
/// answer UNKNOWN without leaking details; the server keeps serving.
/// </summary>
public sealed class RpcServer : IAsyncDisposable
{
    public RpcServer(ServiceRegistry services, RpcServerOptions options)
    {
        Services = services;
        Options = options;
    }

    public ServiceRegistry Services { get; }

    public RpcServerOptions Options { get; }

    /// <summary>The endpoints actually bound (port 0 resolved), valid after <see cref="StartAsync"/>.</summary>
    public IReadOnlyList<IPEndPoint> BoundEndpoints { get; private set; } = [];

    public Task StartAsync(CancellationToken cancellationToken = default) => throw new NotImplementedException();

    /// <summary>Stops accepting calls, cancels running ones, and waits for them to end.</summary>
    public Task StopAsync(CancellationToken cancellationToken = default) => throw new NotImplementedException();

    public ValueTask DisposeAsync() => new(StopAsync());
}
