using System.Collections.Concurrent;
using System.Net;
using Google.Protobuf;
using Scheduler.Rpc.Internal;

namespace Scheduler.Rpc;

/// <summary>
/// A client connection (pool) to one gRPC server address over HTTP/2. Thread-safe; share one per
/// address. Calls are multiplexed as HTTP/2 streams over one <see cref="SocketsHttpHandler"/>
/// (more connections are opened only when one reaches the server's stream limit).
/// </summary>
public sealed class RpcChannel : IDisposable
{
    internal const string UserAgent = "grpc-scheduler-dotnet/0.1";

    private readonly SocketsHttpHandler _handler;
    private readonly ConcurrentDictionary<string, Uri> _uris = new(StringComparer.Ordinal);
    private int _disposed;

    private RpcChannel(Uri address, RpcChannelOptions options)
    {
        Address = address;
        Options = options;
        _handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = options.EnableMultipleHttp2Connections,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            ConnectTimeout = options.ConnectTimeout,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            AutomaticDecompression = DecompressionMethods.None,
            AllowAutoRedirect = false,
            UseCookies = false,
            UseProxy = false,
            InitialHttp2StreamWindowSize = 2 * 1024 * 1024,
        };
        if (options.KeepAlivePingDelay > TimeSpan.Zero && options.KeepAlivePingDelay != Timeout.InfiniteTimeSpan)
        {
            _handler.KeepAlivePingDelay = options.KeepAlivePingDelay < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : options.KeepAlivePingDelay;
            _handler.KeepAlivePingTimeout = options.KeepAlivePingTimeout;
        }
        if (options.ServerCertificateValidation is not null)
        {
            _handler.SslOptions.RemoteCertificateValidationCallback = options.ServerCertificateValidation;
        }
        Invoker = new HttpMessageInvoker(_handler, disposeHandler: true);
    }

    /// <summary>The server address, <c>http://host:port</c> (h2c) or <c>https://host:port</c> (TLS).</summary>
    public Uri Address { get; }

    public RpcChannelOptions Options { get; }

    internal HttpMessageInvoker Invoker { get; }

    /// <summary>Creates a channel for <c>http://host:port</c>, <c>https://host:port</c> or a bare
    /// <c>host:port</c> (plain h2c).</summary>
    public static RpcChannel ForAddress(string address, RpcChannelOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(address);
        var text = address.Contains("://", StringComparison.Ordinal) ? address : "http://" + address;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"'{address}' is not a gRPC address; use host:port, http://host:port or https://host:port.", nameof(address));
        }
        return new RpcChannel(uri, options ?? new RpcChannelOptions());
    }

    public AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request, CallOptions options = default)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(request);
        var call = NewCall(method, options);
        call.StartSingle(request);
        return new AsyncUnaryCall<TResponse>(call.UnaryResponseAsync(), call.ResponseHeadersTask, call.GetStatus, call.GetTrailers, call.Dispose);
    }

    public AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request, CallOptions options = default)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(request);
        var call = NewCall(method, options);
        call.StartSingle(request);
        return new AsyncServerStreamingCall<TResponse>(call, call.ResponseHeadersTask, call.GetStatus, call.GetTrailers, call.Dispose);
    }

    /// <summary>Starts a client-streaming call. Await each <c>RequestStream.WriteAsync</c> before
    /// the next; call <c>CompleteAsync</c> then await the response.</summary>
    public AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, CallOptions options = default)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(method);
        var call = NewCall(method, options);
        call.StartStreaming();
        return new AsyncClientStreamingCall<TRequest, TResponse>(call, call.UnaryResponseAsync(), call.ResponseHeadersTask, call.GetStatus, call.GetTrailers, call.Dispose);
    }

    /// <summary>Starts a bidirectional call. Writes must not overlap: await each
    /// <c>RequestStream.WriteAsync</c> before the next.</summary>
    public AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, CallOptions options = default)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(method);
        var call = NewCall(method, options);
        call.StartStreaming();
        return new AsyncDuplexStreamingCall<TRequest, TResponse>(call, call, call.ResponseHeadersTask, call.GetStatus, call.GetTrailers, call.Dispose);
    }

    private ClientCall<TRequest, TResponse> NewCall<TRequest, TResponse>(Method<TRequest, TResponse> method, CallOptions options)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);
        return new ClientCall<TRequest, TResponse>(this, method, options);
    }

    internal Uri GetUri(IMethod method)
        => _uris.TryGetValue(method.FullName, out var uri) ? uri : _uris.GetOrAdd(method.FullName, static (path, a) => new Uri(a, path), Address);

    /// <summary>Closes the connections; calls still running fail with UNAVAILABLE or CANCELLED.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Invoker.Dispose();
        }
    }
}
