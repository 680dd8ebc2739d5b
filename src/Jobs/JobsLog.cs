using Microsoft.Extensions.Logging;

namespace Scheduler.Jobs;

internal static partial class JobsLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Job {Job}: {Message}")]
    public static partial void JobEvent(ILogger logger, string job, string message);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Killing task {TaskId}: no instance of any job owns it")]
    public static partial void OrphanTask(ILogger logger, string taskId);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Jobs API listening on {Address}")]
    public static partial void Listening(ILogger logger, string address);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Jobs framework step failed; it goes on")]
    public static partial void StepFailed(ILogger logger, Exception e);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "Jobs framework subscribed as {FrameworkId}; reconciling {Count} tasks")]
    public static partial void Subscribed(ILogger logger, string frameworkId, int count);

    [LoggerMessage(EventId = 6, Level = LogLevel.Debug, Message = "Idle probe of {Instance} failed: {Message}")]
    public static partial void ProbeFailed(ILogger logger, string instance, string message);
}
