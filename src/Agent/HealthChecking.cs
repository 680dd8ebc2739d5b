namespace Scheduler.Agent;

/// <summary>Runs a task's health check while it runs (placeholder until health checks land).</summary>
internal static class HealthChecking
{
    public static IDisposable? Start(AgentCore core, RunningTask task, CancellationToken cancellationToken) => null;
}
