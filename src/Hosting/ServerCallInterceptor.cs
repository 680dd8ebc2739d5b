using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Scheduler.Hosting;

/// <summary>
/// An interceptor that treats the four kinds of call alike: <see cref="AroundAsync{T}"/> sees
/// every call once, whatever its kind, and runs it. Subclasses add one concern (logging,
/// metrics, a precondition) without writing it four times.
/// </summary>
public abstract class ServerCallInterceptor : Interceptor
{
    /// <summary>A client resets the stream at its own deadline, which the server's copy of the
    /// deadline trails by the request's transit time: a cancellation this close to the deadline
    /// is the deadline's.</summary>
    private static readonly TimeSpan DeadlineMargin = TimeSpan.FromMilliseconds(250);

    /// <summary>Runs <paramref name="call"/> (the handler, or the next interceptor) for the call
    /// described by <paramref name="context"/>; returns or throws what the call should.</summary>
    protected abstract Task<T> AroundAsync<T>(ServerCallContext context, Func<Task<T>> call);

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
        => AroundAsync(context, () => continuation(request, context));

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
        => AroundAsync(context, () => continuation(requestStream, context));

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
        => AroundAsync(context, async () =>
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
            return true;
        });

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
        => AroundAsync(context, async () =>
        {
            await continuation(requestStream, responseStream, context).ConfigureAwait(false);
            return true;
        });

    /// <summary>The status a call ends with when its handler threw <paramref name="error"/>
    /// (null: it returned normally and ends with <see cref="ServerCallContext.Status"/>).</summary>
    public static StatusCode OutcomeOf(ServerCallContext context, Exception? error)
    {
        ArgumentNullException.ThrowIfNull(context);
        return error switch
        {
            null => context.Status.StatusCode,
            RpcException rpc => rpc.StatusCode,
            OperationCanceledException or IOException when context.CancellationToken.IsCancellationRequested
                => context.Deadline - DateTime.UtcNow <= DeadlineMargin ? StatusCode.DeadlineExceeded : StatusCode.Cancelled,
            _ => StatusCode.Unknown,
        };
    }
}
