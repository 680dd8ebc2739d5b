using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Scheduler.Hosting;

/// <summary>Logs every call that does not end OK: refusals (<see cref="RpcException"/>) at debug
/// level with their status, handler failures (any other exception, which the client sees as
/// UNKNOWN) at error level with the exception. Cancellations by the client are not failures.</summary>
public sealed class CallLoggingInterceptor(ILogger logger) : ServerCallInterceptor
{
    protected override async Task<T> AroundAsync<T>(ServerCallContext context, Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            HostingLog.CallFailed(logger, context.Method, e.StatusCode, e.Status.Detail);
            throw;
        }
        catch (Exception e) when (OutcomeOf(context, e) == StatusCode.Unknown)
        {
            HostingLog.HandlerFailed(logger, context.Method, e);
            throw;
        }
    }
}
