using Sched.V1;

namespace Scheduler.Agent.Tests.Contracts;

/// <summary>The executor contract for the mock executor (tasks told by labels how to behave).</summary>
public sealed class MockExecutorContractTests : ExecutorContractTests
{
    protected override void SkipUnlessAvailable()
    {
    }

    protected override bool SurvivesAgentRestart => false;

    protected override bool SignalsReady => false;

    private static TaskInfo Mock(string id, params (string Key, string Value)[] labels)
    {
        var t = new TaskInfo { TaskId = id, Name = id, AgentId = "agent-test", Container = new ContainerInfo { Type = ContainerInfo.Types.Type.Mock } };
        foreach (var (k, v) in labels)
        {
            t.Labels[k] = v;
        }
        return t;
    }

    protected override TaskInfo Exiting(AgentHarness h, string id, int code) => Mock(id, ("mock.exit_code", code.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("mock.run_ms", "0"));

    protected override TaskInfo RunningUntilKilled(AgentHarness h, string id, bool ignoreSigterm) =>
        Mock(id, ("mock.run_ms", "-1"), ("mock.ignore_sigterm", ignoreSigterm ? "true" : "false"));
}
