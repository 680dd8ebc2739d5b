using Microsoft.Extensions.Logging;
using Sched.V1;

namespace Scheduler.Agent.Telemetry;

/// <summary>Source-generated log messages of the agent: per-task events and the master link.</summary>
internal static partial class AgentLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "task {Task} of framework {Framework} is {State}: {Detail}")]
    public static partial void TaskEnded(ILogger logger, string task, string framework, TaskState state, string detail);

    [LoggerMessage(EventId = 2, Level = LogLevel.Error, Message = "launch of task {Task} failed")]
    public static partial void LaunchFailed(ILogger logger, string task, Exception exception);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "clean-up of task {Task} failed")]
    public static partial void CleanupFailed(ILogger logger, string task, Exception exception);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "re-adopted task {Task} of framework {Framework} (supervisor pid {Pid})")]
    public static partial void Readopted(ILogger logger, string task, string framework, int pid);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "removed stale container cgroup {Container}")]
    public static partial void StaleContainerRemoved(ILogger logger, string container);

    [LoggerMessage(EventId = 10, Level = LogLevel.Error, Message = "master {Master} refused this agent: {Detail}; start the agent afresh with a new work dir")]
    public static partial void Refused(ILogger logger, string master, string detail);

    [LoggerMessage(EventId = 11, Level = LogLevel.Error, Message = "master {Master} rejected the registration: {Detail}")]
    public static partial void RegistrationRejected(ILogger logger, string master, string detail);

    [LoggerMessage(EventId = 12, Level = LogLevel.Information, Message = "master {Master} is not the leader; the leader is {Leader}")]
    public static partial void NotLeader(ILogger logger, string master, string? leader);

    [LoggerMessage(EventId = 13, Level = LogLevel.Warning, Message = "link to master {Master} lost: {Error}")]
    public static partial void LinkLost(ILogger logger, string master, string error);

    [LoggerMessage(EventId = 14, Level = LogLevel.Information, Message = "registered with master {Master} as {Agent}")]
    public static partial void Registered(ILogger logger, string master, string agent);
}
