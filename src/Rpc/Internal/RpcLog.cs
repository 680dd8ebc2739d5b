using Microsoft.Extensions.Logging;

namespace Scheduler.Rpc.Internal;

/// <summary>Source-generated log messages of the RPC layer.</summary>
internal static partial class RpcLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "gRPC server listening on {Endpoints}")]
    public static partial void Listening(ILogger logger, string endpoints);

    [LoggerMessage(EventId = 2, Level = LogLevel.Error, Message = "Handler of {Method} threw; the client gets UNKNOWN")]
    public static partial void HandlerFailed(ILogger logger, string method, Exception exception);

    [LoggerMessage(EventId = 3, Level = LogLevel.Debug, Message = "Call {Method} ended with {StatusCode}: {Detail}")]
    public static partial void CallFailed(ILogger logger, string method, StatusCode statusCode, string detail);

    [LoggerMessage(EventId = 4, Level = LogLevel.Debug, Message = "Unknown method {Path}")]
    public static partial void UnknownMethod(ILogger logger, string path);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "gRPC server stopping; cancelling {Count} running calls")]
    public static partial void Stopping(ILogger logger, int count);

    [LoggerMessage(EventId = 6, Level = LogLevel.Debug, Message = "Request {Path} rejected: {Reason}")]
    public static partial void Rejected(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 7, Level = LogLevel.Warning, Message = "Ignoring malformed grpc-timeout '{Value}' on {Method}")]
    public static partial void BadTimeout(ILogger logger, string value, string method);

    [LoggerMessage(EventId = 8, Level = LogLevel.Warning, Message = "A cancellation callback of a running call threw while the server stopped; stopping anyway")]
    public static partial void StopCallbackFailed(ILogger logger, Exception exception);
}
