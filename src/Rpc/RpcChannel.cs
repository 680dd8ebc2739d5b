using Google.Protobuf;

namespace Scheduler.Rpc;

/// <summary>
/// A client connection (pool) to one gRPC server address over HTTP/2. Thread-safe; share one per
/// address. Calls are multiplexed as HTTP/2 streams.
/// </summary>
public sealed class RpcChannel : IDisposable
{
    private RpcChannel(Uri address, RpcChannelOptions options)
    {
        Address = address;
        Options = options;
    }

    /// <summary>The server address, <c>http://host:port</c> (h2c) or <c>https://host:port</c> (TLS).</summary>
    public Uri Address { get; }

    public RpcChannelOptions Options { get; }

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
        => throw new NotImplementedException();

    public AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request, CallOptions options = default)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
        => throw new NotImplementedException();

    public AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, CallOptions options = default)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
        => throw new NotImplementedException();

    public AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, CallOptions options = default)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
        => throw new NotImplementedException();

    public void Dispose()
    {
    }
}
