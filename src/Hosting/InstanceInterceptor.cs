using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Scheduler.Hosting;

/// <summary>Runs a given interceptor instance. Grpc.AspNetCore registers interceptors by type and
/// creates them itself; this lets <see cref="GrpcServerOptions.Interceptors"/> hold instances
/// (built with their dependencies, several of one type) in their order.</summary>
internal sealed class InstanceInterceptor(Interceptor inner) : Interceptor
{
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
        => inner.UnaryServerHandler(request, context, continuation);

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
        => inner.ClientStreamingServerHandler(requestStream, context, continuation);

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
        => inner.ServerStreamingServerHandler(request, responseStream, context, continuation);

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
        => inner.DuplexStreamingServerHandler(requestStream, responseStream, context, continuation);
}
