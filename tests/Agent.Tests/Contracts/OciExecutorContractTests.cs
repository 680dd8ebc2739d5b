using Sched.V1;
using Xunit;

namespace Scheduler.Agent.Tests.Contracts;

/// <summary>The executor contract for OCI containers (runc, an image built with umoci from busybox-static).</summary>
public sealed class OciExecutorContractTests : ExecutorContractTests
{
    private string? _layout;

    protected override void SkipUnlessAvailable()
    {
        var missing = NeedsFactAttribute.Missing(Needs.Containers);
        Skip.If(missing.Count > 0, "needs " + string.Join(", ", missing) + " (CI runs as root and test.sh installs the packages)");
    }

    protected override bool SurvivesAgentRestart => true;

    private string Image(AgentHarness h) => $"oci:{_layout ??= OciExecutorTests.BuildImage(h.WorkDir)}:t";

    protected override TaskInfo Exiting(AgentHarness h, string id, int code) => OciExecutorTests.OciTask(id, Image(h), $"exit {code}");

    protected override TaskInfo RunningUntilKilled(AgentHarness h, string id, bool ignoreSigterm) =>
        OciExecutorTests.OciTask(id, Image(h), (ignoreSigterm ? "trap '' TERM; " : "") + "sleep 1000 & echo up > /mnt/sandbox/ready; wait");
}
