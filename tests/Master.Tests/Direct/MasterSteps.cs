using Sched.V1;

namespace Scheduler.Master.Tests.Direct;

/// <summary>
/// One event of a model run: something an agent, a framework, an operator or the clock does.
/// Steps name agents, frameworks and tasks by index, taken modulo how many exist when the step
/// runs (a step with nothing to act on does nothing), so that removing any step from a failing
/// sequence leaves a valid sequence: that is what lets FsCheck shrink a failure to a few steps.
/// </summary>
public abstract record MasterStep
{
    /// <summary>A new agent registers with <paramref name="Cpus"/> cpus and <paramref name="Mem"/> MiB.</summary>
    public sealed record AddAgent(int Cpus, int Mem) : MasterStep;

    /// <summary>An agent's stream breaks; it stops heartbeating until it returns.</summary>
    public sealed record AgentDisconnects(int Agent) : MasterStep;

    /// <summary>A disconnected agent re-registers with its tasks and re-sends unacknowledged updates.</summary>
    public sealed record AgentReturns(int Agent) : MasterStep;

    /// <summary>A framework of role <c>Roles[Role]</c> subscribes.</summary>
    public sealed record AddFramework(int Role) : MasterStep;

    public sealed record FrameworkDisconnects(int Framework) : MasterStep;

    public sealed record FrameworkReturns(int Framework) : MasterStep;

    /// <summary>A full allocation pass.</summary>
    public sealed record Allocate : MasterStep;

    /// <summary>A framework accepts one of its offers, launching <paramref name="Tasks"/> tasks of
    /// <paramref name="Cpus"/> cpus and 64 MiB each (those that do not fit are refused by the master).</summary>
    public sealed record Accept(int Framework, int Offer, int Tasks, int Cpus) : MasterStep;

    public sealed record Decline(int Framework) : MasterStep;

    /// <summary>An agent reports a new state of one of its live tasks.</summary>
    public sealed record Update(int Agent, int Task, TaskState State) : MasterStep;

    /// <summary>A framework acknowledges every update it received.</summary>
    public sealed record Acknowledge(int Framework) : MasterStep;

    public sealed record Kill(int Framework, int Task) : MasterStep;

    /// <summary>An operator sets the cpus quota of a role (refused calls change nothing).</summary>
    public sealed record SetQuota(int Role, int Guarantee, int Limit) : MasterStep;

    public sealed record Advance(int Seconds) : MasterStep;

    /// <summary>The leader steps down; a new master takes over from the registry.</summary>
    public sealed record Failover : MasterStep;

    public static readonly string[] Roles = ["web", "batch"];
}

/// <summary>A sequence of steps (printed one per line when FsCheck reports a counterexample).</summary>
public sealed record MasterScenario(IReadOnlyList<MasterStep> Steps)
{
    public override string ToString() => $"{Steps.Count} steps:{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", Steps);

    /// <summary>Shorter scenarios, biggest cuts first: halves, then every single step left out.</summary>
    public IEnumerable<MasterScenario> Shrink()
    {
        var n = Steps.Count;
        if (n == 0)
        {
            yield break;
        }
        if (n > 1)
        {
            yield return new MasterScenario([.. Steps.Take(n / 2)]);
            yield return new MasterScenario([.. Steps.Skip(n / 2)]);
        }
        for (var i = 0; i < n; i++)
        {
            yield return new MasterScenario([.. Steps.Take(i), .. Steps.Skip(i + 1)]);
        }
    }
}
