namespace Scheduler.Agent.Execution;

/// <summary>The environment a task sees: a minimal base, the scheduler's variables, then the
/// task's own <c>command.env</c> (which wins).</summary>
internal static class TaskEnvironment
{
    public static Dictionary<string, string> Build(TaskLaunch launch, string root)
    {
        var sandbox = root == "/" ? launch.SandboxDir : "/mnt/sandbox";
        var env = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ["HOME"] = sandbox,
            ["SCHED_SANDBOX"] = sandbox,
            ["SCHED_TASK_ID"] = launch.Task.TaskId,
            ["SCHED_FRAMEWORK_ID"] = launch.Framework.Id,
            ["SCHED_AGENT_ID"] = launch.Task.AgentId,
        };
        if (launch.Task.Command is { } command)
        {
            foreach (var kv in command.Env)
            {
                env[kv.Key] = kv.Value;
            }
        }
        foreach (var secret in launch.Secrets.Where(s => s.Env.Length > 0))
        {
            env[secret.Env] = secret.Value.ToStringUtf8();
        }
        return env;
    }
}
