using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Scheduler.FrameworkSdk;

/// <summary>Source-generated log messages of the SDK: subscription, acknowledgements, calls.</summary>
internal static partial class SdkLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Master {Master} is not the leader; {Next}")]
    public static partial void NotLeader(ILogger logger, string master, string next);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Subscription to master {Master} failed: {Reason}")]
    public static partial void SubscriptionFailed(ILogger logger, string master, string? reason);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Subscribed to master {Master} as framework {FrameworkId} (stream {StreamId})")]
    public static partial void Subscribed(ILogger logger, string master, string frameworkId, string streamId);

    [LoggerMessage(EventId = 4, Level = LogLevel.Error, Message = "Framework client stopped: {Reason}")]
    public static partial void Stopped(ILogger logger, string reason);

    [LoggerMessage(EventId = 5, Level = LogLevel.Debug, Message = "Acknowledgement of task {TaskId} ({Uuid}) refused: {Error}")]
    public static partial void AckRefused(ILogger logger, string taskId, string uuid, string error);

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "Could not acknowledge {Count} status update(s); the agent will re-send them: {Error}")]
    public static partial void AckFailed(ILogger logger, int count, string error);

    [LoggerMessage(EventId = 7, Level = LogLevel.Debug, Message = "{Method} raced a re-subscription ({Status}); retrying")]
    public static partial void RacedResubscription(ILogger logger, string method, StatusCode status);

    [LoggerMessage(EventId = 8, Level = LogLevel.Error, Message = "A scheduler callback failed; the driver goes on")]
    public static partial void CallbackFailed(ILogger logger, Exception exception);
}
