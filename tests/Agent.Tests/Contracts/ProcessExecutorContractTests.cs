using Sched.V1;

namespace Scheduler.Agent.Tests.Contracts;

/// <summary>The executor contract for processes under native supervisors (in cgroups when root).</summary>
public sealed class ProcessExecutorContractTests : ExecutorContractTests
{
    protected override void SkipUnlessAvailable()
    {
    }

    protected override bool SurvivesAgentRestart => true;

    protected override TaskInfo Exiting(AgentHarness h, string id, int code) => AgentHarness.ShellTask(id, $"exit {code}");

    protected override TaskInfo RunningUntilKilled(AgentHarness h, string id, bool ignoreSigterm) =>
        AgentHarness.ShellTask(id, (ignoreSigterm ? "trap '' TERM; " : "") + "sleep 1000 & echo up > ready; wait");
}
