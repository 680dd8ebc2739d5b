using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Scheduler.Hosting;

/// <summary>Source-generated log messages of the gRPC hosting layer.</summary>
internal static partial class HostingLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "gRPC server listening on {Endpoints}")]
    public static partial void Listening(ILogger logger, string endpoints);

    [LoggerMessage(EventId = 2, Level = LogLevel.Error, Message = "Handler of {Method} threw; the client gets UNKNOWN")]
    public static partial void HandlerFailed(ILogger logger, string method, Exception exception);

    [LoggerMessage(EventId = 3, Level = LogLevel.Debug, Message = "Call {Method} ended with {StatusCode}: {Detail}")]
    public static partial void CallFailed(ILogger logger, string method, StatusCode statusCode, string detail);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "gRPC server stopping")]
    public static partial void Stopping(ILogger logger);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "TLS handshake refused: {Problem}")]
    public static partial void ClientCertificateRefused(ILogger logger, string problem);
}
