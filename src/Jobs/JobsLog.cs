using Microsoft.Extensions.Logging;

namespace Scheduler.Jobs;

internal static partial class JobsLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Job {Job}: {Message}")]
    public static partial void JobEvent(ILogger logger, string job, string message);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Killing task {TaskId}: no instance of any job runs it")]
    public static partial void OrphanTask(ILogger logger, string taskId);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Jobs API listening on {Address}")]
    public static partial void Listening(ILogger logger, string address);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Jobs framework step failed; it goes on")]
    public static partial void StepFailed(ILogger logger, Exception e);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "Jobs framework subscribed as {FrameworkId}; reconciling {Count} tasks")]
    public static partial void Subscribed(ILogger logger, string frameworkId, int count);

    [LoggerMessage(EventId = 6, Level = LogLevel.Debug, Message = "Idle probe of {Instance} failed: {Message}")]
    public static partial void ProbeFailed(ILogger logger, string instance, string message);

    [LoggerMessage(EventId = 7, Level = LogLevel.Information, Message = "Jobs instance {Address} campaigning to be active (active now: {Active})")]
    public static partial void Campaigning(ILogger logger, string address, string active);

    [LoggerMessage(EventId = 8, Level = LogLevel.Information, Message = "Jobs instance {Address} is active (term {Term})")]
    public static partial void Active(ILogger logger, string address, ulong term);

    [LoggerMessage(EventId = 9, Level = LogLevel.Warning, Message = "Jobs instance {Address} lost its leadership (term {Term}); it stops at once and stands by")]
    public static partial void LeadershipLost(ILogger logger, string address, ulong term);

    [LoggerMessage(EventId = 10, Level = LogLevel.Error, Message = "The jobs framework's term ended with an error")]
    public static partial void TermFailed(ILogger logger, Exception e);

    [LoggerMessage(EventId = 11, Level = LogLevel.Information, Message = "Jobs instance {Address} is standing by")]
    public static partial void StandingBy(ILogger logger, string address);

    [LoggerMessage(EventId = 12, Level = LogLevel.Debug, Message = "Reading the masters' quota view failed ({Code}: {Detail}); pending reasons come from the offers alone")]
    public static partial void QuotaViewFailed(ILogger logger, string code, string detail);
}
