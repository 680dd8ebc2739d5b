using Grpc.Core;

namespace Scheduler.Channels;

/// <summary>Calls by typed method on any channel (the generated clients do the same per service).</summary>
public static class ChannelCalls
{
    public static AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(this ChannelBase channel, Method<TRequest, TResponse> method, TRequest request, CallOptions options = default)
        where TRequest : class
        where TResponse : class
    {
        ArgumentNullException.ThrowIfNull(channel);
        return channel.CreateCallInvoker().AsyncUnaryCall(method, null, options, request);
    }

    public static AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(this ChannelBase channel, Method<TRequest, TResponse> method, TRequest request, CallOptions options = default)
        where TRequest : class
        where TResponse : class
    {
        ArgumentNullException.ThrowIfNull(channel);
        return channel.CreateCallInvoker().AsyncServerStreamingCall(method, null, options, request);
    }

    public static AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(this ChannelBase channel, Method<TRequest, TResponse> method, CallOptions options = default)
        where TRequest : class
        where TResponse : class
    {
        ArgumentNullException.ThrowIfNull(channel);
        return channel.CreateCallInvoker().AsyncClientStreamingCall(method, null, options);
    }

    public static AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(this ChannelBase channel, Method<TRequest, TResponse> method, CallOptions options = default)
        where TRequest : class
        where TResponse : class
    {
        ArgumentNullException.ThrowIfNull(channel);
        return channel.CreateCallInvoker().AsyncDuplexStreamingCall(method, null, options);
    }
}
