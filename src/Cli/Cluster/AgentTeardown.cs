using Scheduler.Agent.Checkpoint;
using Scheduler.Agent.Isolation;
using Scheduler.Agent.Native;

namespace Scheduler.Cli.Cluster;

/// <summary>
/// Stops an agent of a local cluster and everything it started. Task supervisors outlive their
/// agent by design (they leave its session, and pooled ones are started before they know their
/// task), so they are found by what this program knows, never by name or command line:
/// <list type="bullet">
/// <item>the agent's process tree, frozen with SIGSTOP until complete (a stopped process cannot fork);</item>
/// <item>the supervisors the agent's checkpoint records by pid and start time (tasks started by an
/// earlier run of the agent, which are no longer in its tree);</item>
/// <item>the agent's task cgroups (<c>sched/&lt;scope&gt;/…</c>, root only), which hold every task
/// process, wherever it was reparented to.</item>
/// </list>
/// </summary>
public static class AgentTeardown
{
    /// <summary>SIGTERM to the agent, its supervisors and tasks; SIGKILL to what is left after
    /// <paramref name="grace"/>; then every process left in the agent's task cgroups is killed
    /// and the cgroups removed.</summary>
    /// <param name="agent">The agent process, or null when it is not running (killed earlier).</param>
    /// <param name="workDir">The agent's <c>--work-dir</c>.</param>
    public static async Task StopAsync(DaemonProcess? agent, string workDir, TimeSpan grace)
    {
        if (!OperatingSystem.IsLinux())
        {
            if (agent is not null)
            {
                await agent.DisposeAsync();
            }
            return;
        }
        var roots = new List<ProcessIdentity>();
        if (agent?.Identity is { } self)
        {
            roots.Add(self);
        }
        roots.AddRange(CheckpointedSupervisors(workDir));
        var started = ProcessTree.Freeze(roots);
        // A supervisor answers SIGTERM by killing its task with the task's grace; it is continued
        // after the signal is queued, so it sees the SIGTERM before it can do anything else.
        ProcessTree.Signal(started, ProcessTree.SIGTERM);
        ProcessTree.Signal(started, ProcessTree.SIGCONT);
        var left = await ProcessTree.WaitGoneAsync(started, grace);
        ProcessTree.Signal(left, ProcessTree.SIGKILL);
        if (agent is not null)
        {
            await agent.DisposeAsync();
        }
        KillTaskCgroups(workDir);
        await ProcessTree.WaitGoneAsync(left, TimeSpan.FromSeconds(5));
    }

    private static IEnumerable<ProcessIdentity> CheckpointedSupervisors(string workDir)
    {
        if (!Directory.Exists(Path.Combine(workDir, "meta", "tasks")))
        {
            return [];
        }
        var boot = ProcFs.BootId();
        return new AgentCheckpointStore(workDir).LoadAll()
            .Select(c => c.Handle)
            .Where(h => h.SupervisorPid > 0 && h.BootId == boot)
            .Select(h => new ProcessIdentity(h.SupervisorPid, h.SupervisorStartTime))
            .ToList();
    }

    private static void KillTaskCgroups(string workDir)
    {
        try
        {
            var isolator = Isolators.Create("auto", Isolators.ScopeFor(workDir));
            isolator.RemoveStale(new HashSet<string>(StringComparer.Ordinal));
            isolator.RemoveScopeIfEmpty();
        }
        catch (Exception e) when (e is IsolationException or IOException or UnauthorizedAccessException)
        {
            // Best effort: the processes were signalled above; a cgroup that cannot be removed
            // now is removed by the next agent on this work dir (RemoveStale at start).
        }
    }
}
