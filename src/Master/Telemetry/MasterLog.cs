using Microsoft.Extensions.Logging;

namespace Scheduler.Master.Telemetry;

/// <summary>The master's log messages.</summary>
public static partial class MasterLog
{
    [LoggerMessage(1, LogLevel.Information, "Master listening on {Address}")]
    public static partial void Listening(ILogger logger, string address);

    [LoggerMessage(2, LogLevel.Information, "Became leader (term {Term}); recovering {Agents} agents and {Frameworks} frameworks from the registry")]
    public static partial void BecameLeader(ILogger logger, ulong term, int agents, int frameworks);

    [LoggerMessage(3, LogLevel.Warning, "Leadership lost (term {Term}); closing every stream")]
    public static partial void LeadershipLost(ILogger logger, ulong term);

    [LoggerMessage(4, LogLevel.Information, "Agent {AgentId} ({Hostname}) registered with {Resources}")]
    public static partial void AgentRegistered(ILogger logger, string agentId, string hostname, string resources);

    [LoggerMessage(5, LogLevel.Information, "Agent {AgentId} re-registered with {Tasks} tasks")]
    public static partial void AgentReregistered(ILogger logger, string agentId, int tasks);

    [LoggerMessage(6, LogLevel.Warning, "Agent {AgentId} unreachable: {Why}")]
    public static partial void AgentUnreachable(ILogger logger, string agentId, string why);

    [LoggerMessage(7, LogLevel.Information, "Framework {FrameworkId} ({Name}) subscribed with roles {Roles}")]
    public static partial void FrameworkSubscribed(ILogger logger, string frameworkId, string name, string roles);

    [LoggerMessage(8, LogLevel.Information, "Framework {FrameworkId} disconnected; tearing down at {Deadline} unless it re-subscribes")]
    public static partial void FrameworkDisconnected(ILogger logger, string frameworkId, DateTimeOffset deadline);

    [LoggerMessage(9, LogLevel.Information, "Framework {FrameworkId} removed: {Why}")]
    public static partial void FrameworkRemoved(ILogger logger, string frameworkId, string why);

    [LoggerMessage(10, LogLevel.Error, "Master command failed")]
    public static partial void CommandFailed(ILogger logger, Exception exception);

    [LoggerMessage(11, LogLevel.Error, "Registry write failed: {Why}")]
    public static partial void RegistryWriteFailed(ILogger logger, string why, Exception exception);

    [LoggerMessage(12, LogLevel.Information, "Recovery finished: {Back} agents re-registered, {Missing} marked unreachable")]
    public static partial void RecoveryFinished(ILogger logger, int back, int missing);

    [LoggerMessage(13, LogLevel.Warning, "Agent registration refused: {Why}")]
    public static partial void AgentRefused(ILogger logger, string why);

    [LoggerMessage(14, LogLevel.Error, "Master failed")]
    public static partial void MasterFailed(ILogger logger, Exception exception);

    [LoggerMessage(15, LogLevel.Warning, "Ignored a status update from agent {AgentId} for task {TaskId} of framework {FrameworkId}: {Why}")]
    public static partial void ForeignStatusUpdate(ILogger logger, string agentId, string taskId, string frameworkId, string why);

    [LoggerMessage(16, LogLevel.Warning, "Agent {AgentId} re-registered with task {TaskId} of framework {FrameworkId}, which {Why}; killing it")]
    public static partial void KillingUnknownTask(ILogger logger, string agentId, string taskId, string frameworkId, string why);

    [LoggerMessage(17, LogLevel.Warning, "Offer {OfferId} on agent {AgentId} is {Bytes} bytes, more than the largest message of {Limit} bytes: its resources go back unoffered; shrink the agent's attributes or raise the master's MaxMessageSize")]
    public static partial void OfferTooLarge(ILogger logger, string offerId, string agentId, int bytes, int limit);

    [LoggerMessage(18, LogLevel.Warning, "Agent {AgentId} forgotten: {Why}; it registers as a new agent if it returns")]
    public static partial void AgentForgotten(ILogger logger, string agentId, string why);

    [LoggerMessage(19, LogLevel.Information, "Agent {AgentId}: {Operation} by framework {FrameworkId} for role {Role}: {From} -> {To}")]
    public static partial void OperationApplied(ILogger logger, string agentId, Sched.V1.Operation.OperationOneofCase operation, string frameworkId, string role, State.ResourceBag from, State.ResourceBag to);

    [LoggerMessage(20, LogLevel.Warning, "Agent {AgentId}: its resources no longer hold the source of these reservations/volumes, which are dropped: {Dropped}")]
    public static partial void CheckpointedResourcesDropped(ILogger logger, string agentId, State.ResourceBag dropped);

    [LoggerMessage(21, LogLevel.Warning, "Agent {AgentId} marked gone by an operator: {Tasks} tasks reported gone; the agent is never admitted again")]
    public static partial void AgentMarkedGone(ILogger logger, string agentId, uint tasks);

    [LoggerMessage(40, LogLevel.Error, "The ACL file changed but cannot be used: {Problem}")]
    public static partial void AclReloadFailed(ILogger logger, string problem);

    [LoggerMessage(41, LogLevel.Information, "ACLs read again from {Path}")]
    public static partial void AclReloaded(ILogger logger, string path);

    [LoggerMessage(42, LogLevel.Warning, "Serving anonymous callers with every action allowed (--insecure-allow-anonymous): anyone who reaches {Address} owns this cluster")]
    public static partial void AnonymousAllowed(ILogger logger, string address);

    [LoggerMessage(43, LogLevel.Information, "audit principal={Principal} method={Method} object={Object} result={Result} detail={Detail}")]
    public static partial void Audit(ILogger logger, string principal, string method, string @object, string result, string detail);
}
