using Sched.V1;
using Scheduler.Master.Election;

namespace Scheduler.Master.Tests.Election;

/// <summary>The election contract for the single master.</summary>
public sealed class StandaloneElectionContractTests : LeaderElectionContractTests
{
    protected override bool ExpectReplicated => false;

    protected override ILeaderElection NewElection(MasterInfo self) => new StandaloneElection(self);
}
