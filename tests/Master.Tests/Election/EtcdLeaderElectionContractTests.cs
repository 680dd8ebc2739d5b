using Sched.V1;
using Scheduler.Etcd;
using Scheduler.Master.Election;
using Scheduler.Master.Tests.Registry;
using Xunit;

namespace Scheduler.Master.Tests.Election;

/// <summary>The election contract for etcd (a real 3-member cluster; each test in its own keys).</summary>
public sealed class EtcdLeaderElectionContractTests(EtcdClusterFixture fixture) : LeaderElectionContractTests, IClassFixture<EtcdClusterFixture>
{
    private readonly (string Prefix, string LeaderKey, string MastersPrefix) _ns = EtcdClusterFixture.NewNamespace();
    private readonly List<EtcdClient> _clients = [];

    protected override bool ExpectReplicated => true;

    protected override ILeaderElection NewElection(MasterInfo self)
    {
        var client = fixture.Client();
        _clients.Add(client);
        return new EtcdLeaderElection(client, self, new EtcdLeaderElectionOptions { LeaderKey = _ns.LeaderKey, MastersPrefix = _ns.MastersPrefix });
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        foreach (var c in _clients)
        {
            c.Dispose();
        }
    }
}
