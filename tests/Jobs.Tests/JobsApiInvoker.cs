using Grpc.Core;
using Scheduler.FrameworkSdk;

namespace Scheduler.Jobs.Tests;

/// <summary>
/// Calls the Jobs API as <c>schedctl job</c> does (through <see cref="MasterDirectory"/>): to the
/// instance it was given, following a standby's refusal that names the active instance
/// (<c>sched-leader</c> trailer) — instances trade the active role whenever a lease expires, a
/// killed one or merely a slow one. When the instance called cannot be reached at all, the next
/// call goes back to the address it was given. The Jobs API is unary only.
/// </summary>
internal sealed class JobsApiInvoker(MasterDirectory directory) : CallInvoker
{
    private const int MaxRedirects = 3;

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
    {
        var response = CallAsync(method, host, options, request);
        return new AsyncUnaryCall<TResponse>(
            response,
            Task.FromResult(new Metadata()),
            () => response.IsCompletedSuccessfully ? Status.DefaultSuccess : (response.Exception?.InnerException as RpcException)?.Status ?? new Status(StatusCode.Unknown, "the call did not finish"),
            () => (response.Exception?.InnerException as RpcException)?.Trailers ?? new Metadata(),
            () => { });
    }

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        CallAsync(method, host, options, request).GetAwaiter().GetResult();

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        throw new NotSupportedException("the Jobs API has unary methods only");

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        throw new NotSupportedException("the Jobs API has unary methods only");

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        throw new NotSupportedException("the Jobs API has unary methods only");

    private async Task<TResponse> CallAsync<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
        where TRequest : class
        where TResponse : class
    {
        for (var attempt = 0; ; attempt++)
        {
            var address = directory.Current;
            try
            {
                using var call = directory.ChannelFor(address).CreateCallInvoker().AsyncUnaryCall(method, host, options, request);
                return await call.ResponseAsync.ConfigureAwait(false);
            }
            catch (RpcException e) when (attempt < MaxRedirects && MasterDirectory.LeaderHint(e) is { Length: > 0 } leader && leader != address)
            {
                directory.FollowLeader(leader);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && MasterDirectory.LeaderHint(e) is null)
            {
                directory.MoveNext();
                throw;
            }
        }
    }
}
