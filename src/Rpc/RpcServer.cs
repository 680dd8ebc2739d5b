using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Scheduler.Rpc.Internal;

namespace Scheduler.Rpc;

/// <summary>
/// A gRPC server on Kestrel serving the methods of a <see cref="ServiceRegistry"/>.
/// Unknown paths answer UNIMPLEMENTED; handler exceptions other than <see cref="RpcException"/>
/// answer UNKNOWN without leaking details; the server keeps serving.
/// </summary>
public sealed class RpcServer : IAsyncDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ILogger _logger;
    private WebApplication? _app;
    private int _running;
    private int _state; // 0 new, 1 starting/started, 2 stopping/stopped
    private Task? _stopTask;

    public RpcServer(ServiceRegistry services, RpcServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        Services = services;
        Options = options;
        _logger = (options.LoggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Scheduler.Rpc.RpcServer");
    }

    public ServiceRegistry Services { get; }

    public RpcServerOptions Options { get; }

    /// <summary>The endpoints actually bound (port 0 resolved), valid after <see cref="StartAsync"/>.</summary>
    public IReadOnlyList<IPEndPoint> BoundEndpoints { get; private set; } = [];

    /// <summary>Number of calls being served right now.</summary>
    public int RunningCalls => Volatile.Read(ref _running);

    /// <summary>Binds every endpoint and starts serving. Throws when an address cannot be bound.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            throw new InvalidOperationException("The server was already started.");
        }
        if (Options.Endpoints.Count == 0)
        {
            throw new InvalidOperationException("RpcServerOptions.Endpoints is empty; add at least one RpcEndpoint (port 0 picks a free port).");
        }
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Services.AddSingleton<ILoggerFactory>(new ServerLoggerFactory(Options.LoggerFactory ?? NullLoggerFactory.Instance));
        builder.Services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        var listens = new List<ListenOptions>();
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = null;
            k.Limits.MinRequestBodyDataRate = null;
            k.Limits.MinResponseDataRate = null;
            k.Limits.KeepAliveTimeout = TimeSpan.FromDays(1);
            k.Limits.Http2.MaxStreamsPerConnection = Options.MaxConcurrentStreams;
            k.Limits.Http2.InitialConnectionWindowSize = 4 * 1024 * 1024;
            k.Limits.Http2.InitialStreamWindowSize = 2 * 1024 * 1024;
            if (Options.KeepAlivePingDelay is { } delay)
            {
                k.Limits.Http2.KeepAlivePingDelay = delay;
                k.Limits.Http2.KeepAlivePingTimeout = Options.KeepAlivePingTimeout;
            }
            foreach (var endpoint in Options.Endpoints)
            {
                k.Listen(endpoint.EndPoint, lo =>
                {
                    lo.Protocols = HttpProtocols.Http2;
                    if (endpoint.Certificate is not null)
                    {
                        lo.UseHttps(endpoint.Certificate);
                    }
                    listens.Add(lo);
                });
            }
        });
        // After UseKestrelCore, so that this pool replaces Kestrel's (which keeps every block a
        // burst ever used) wherever Kestrel asks the container for one.
        builder.Services.RemoveAll<IMemoryPoolFactory<byte>>();
        builder.Services.AddSingleton<IMemoryPoolFactory<byte>>(new BoundedBlockPoolFactory(Options.MaxRetainedPoolBlocks));
        var app = builder.Build();
        app.Run(HandleAsync);
        _app = app;
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        BoundEndpoints = listens.Select(l => l.IPEndPoint ?? throw new InvalidOperationException("Kestrel bound a non-IP endpoint.")).ToArray();
        RpcLog.Listening(_logger, string.Join(", ", BoundEndpoints));
    }

    /// <summary>Stops accepting calls, cancels running ones, and waits for them to end.</summary>
    public Task StopAsync(CancellationToken cancellationToken = default)
    {
        lock (_stopping)
        {
            _stopTask ??= StopCoreAsync(cancellationToken);
            return _stopTask;
        }
    }

    private async Task StopCoreAsync(CancellationToken cancellationToken)
    {
        var previous = Interlocked.Exchange(ref _state, 2);
        if (previous == 0 || _app is null)
        {
            return;
        }
        RpcLog.Stopping(_logger, RunningCalls);
        try
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
        }
        catch (AggregateException ex)
        {
            // Every callback has run; one of them failing must not leave the server half stopped.
            RpcLog.StopCallbackFailed(_logger, ex);
        }
        if (Volatile.Read(ref _running) == 0)
        {
            _drained.TrySetResult();
        }
        await _drained.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        // Every call has ended; give idle client connections a moment to take the GOAWAY, then
        // let Kestrel abort whatever is left rather than wait for clients that never close.
        using var linger = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        linger.CancelAfter(TimeSpan.FromSeconds(2));
        await _app.StopAsync(linger.Token).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    public ValueTask DisposeAsync() => new(StopAsync());

    private async Task HandleAsync(HttpContext http)
    {
        var request = http.Request;
        var response = http.Response;
        var path = request.Path.Value ?? "";
        if (!HttpMethods.IsPost(request.Method))
        {
            RpcLog.Rejected(_logger, path, "method " + request.Method);
            response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            response.Headers.Allow = "POST";
            return;
        }
        if (!GrpcProtocol.IsGrpcContentType(request.ContentType))
        {
            RpcLog.Rejected(_logger, path, "content-type " + request.ContentType);
            response.StatusCode = StatusCodes.Status415UnsupportedMediaType;
            response.Headers[GrpcProtocol.StatusHeader] = "13";
            response.Headers[GrpcProtocol.MessageHeader] = GrpcProtocol.EncodeMessage($"Content-Type '{request.ContentType}' is not supported; use application/grpc.");
            return;
        }
        response.ContentType = GrpcProtocol.ContentType;

        var encoding = request.Headers[GrpcProtocol.EncodingHeader].ToString();
        var gzip = encoding.Equals(GrpcProtocol.Gzip, StringComparison.OrdinalIgnoreCase);
        if (encoding.Length > 0)
        {
            // grpc-accept-encoding answers a client that compresses (and is required when its
            // encoding is refused). Not sent on every response: Kestrel keeps a response's headers
            // for the life of the stream, and this one alone costs a header dictionary per stream.
            response.Headers[GrpcProtocol.AcceptEncodingHeader] = GrpcProtocol.AcceptEncodingValue;
        }
        var call = new HttpServerCallContext(http, path, Options, _logger, gzip, _stopping.Token);
        Interlocked.Increment(ref _running);
        try
        {
            if (Volatile.Read(ref _state) == 2)
            {
                call.Complete(new Status(StatusCode.Unavailable, "The server is shutting down; retry on another server."));
                return;
            }
            if (!Services.TryGet(path, out var definition))
            {
                RpcLog.UnknownMethod(_logger, path);
                call.Complete(new Status(StatusCode.Unimplemented, $"Method {path} is not implemented by this server."));
                return;
            }
            if (encoding.Length > 0 && !gzip && !encoding.Equals(GrpcProtocol.Identity, StringComparison.OrdinalIgnoreCase))
            {
                call.Complete(new Status(StatusCode.Unimplemented, $"Message encoding '{encoding}' is not supported; supported: {GrpcProtocol.AcceptEncodingValue}."));
                return;
            }
            var timeout = request.Headers[GrpcProtocol.TimeoutHeader];
            if (timeout.Count > 0)
            {
                if (GrpcProtocol.TryParseTimeout(timeout.ToString(), out var t))
                {
                    call.SetDeadline(t);
                }
                else
                {
                    RpcLog.BadTimeout(_logger, timeout.ToString(), path);
                }
            }
            Status status;
            try
            {
                await definition.InvokeAsync(call).ConfigureAwait(false);
                status = call.Status;
            }
            catch (RpcException ex)
            {
                status = ex.Status;
                call.AddTrailers(ex.Trailers);
            }
            catch (Exception ex) when (call.IsCancelled && ex is OperationCanceledException or IOException or InvalidOperationException)
            {
                status = CancelledStatus(call);
            }
            catch (Exception ex)
            {
                if (call.IsCancelled)
                {
                    status = CancelledStatus(call);
                }
                else
                {
                    RpcLog.HandlerFailed(_logger, path, ex);
                    status = new Status(StatusCode.Unknown, "Exception was thrown by handler.");
                }
            }
            if (status.StatusCode == StatusCode.OK && call.DeadlineExceeded)
            {
                // The client has given up already; per the spec the call ends DEADLINE_EXCEEDED.
                status = new Status(StatusCode.DeadlineExceeded, "Deadline exceeded.");
            }
            if (status.StatusCode != StatusCode.OK)
            {
                RpcLog.CallFailed(_logger, path, status.StatusCode, status.Detail);
            }
            if (!http.RequestAborted.IsCancellationRequested)
            {
                call.Complete(status);
            }
        }
        finally
        {
            call.Dispose();
            if (Interlocked.Decrement(ref _running) == 0 && Volatile.Read(ref _state) == 2)
            {
                _drained.TrySetResult();
            }
        }
    }

    private Status CancelledStatus(HttpServerCallContext call)
    {
        if (call.DeadlineExceeded)
        {
            return new Status(StatusCode.DeadlineExceeded, "Deadline exceeded.");
        }
        if (_stopping.IsCancellationRequested)
        {
            return new Status(StatusCode.Unavailable, "The server is shutting down; the call was cancelled.");
        }
        return new Status(StatusCode.Cancelled, "The call was cancelled.");
    }

    internal static string FormatStatus(StatusCode code) => ((int)code).ToString(CultureInfo.InvariantCulture);
}
