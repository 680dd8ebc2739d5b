using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Scheduler.Protocol;
using Xunit;

namespace Scheduler.Master.Tests;

/// <summary>Roles that only a past reservation named do not stay in the master's role list.</summary>
public sealed class RoleTombstoneTests
{
    private static Resource Reserved(string role, Reservation.Types.Type type = Reservation.Types.Type.Unspecified) =>
        new() { Name = "cpus", Scalar = 1, Reservation = new Reservation { Type = type, Role = role, Principal = "admin" } };

    [Fact]
    public async Task Roles_reserved_for_and_unreserved_leave_the_role_list_as_it_was()
    {
        await using var cluster = await Cluster.StartAsync();
        var agent = await cluster.AddAgentAsync(cpus: 4, mem: 1024);
        var framework = await cluster.AddFrameworkAsync(TestFramework.DefaultInfo("web"));
        await framework.NextOfferAsync();
        var before = (await cluster.Master.Operator(OperatorMethods.GetRoles, new GetRolesRequest())).Roles.Select(r => r.Name).ToList();
        Assert.Equal(["web"], before);

        for (var i = 0; i < 300; i++)
        {
            var role = $"tenant{i}/batch";
            await cluster.Master.Operator(OperatorMethods.ReserveResources, new ReserveResourcesRequest { AgentId = agent.AgentId, Resources = { Reserved(role) } });
            await cluster.Master.Operator(OperatorMethods.UnreserveResources, new UnreserveResourcesRequest { AgentId = agent.AgentId, Resources = { Reserved(role, Reservation.Types.Type.Dynamic) } });
        }

        await Poll.UntilAsync(async () => (await cluster.Master.Operator(OperatorMethods.GetRoles, new GetRolesRequest())).Roles.Count == before.Count,
            TimeSpan.FromSeconds(20), "the roles of the removed reservations to be pruned");
        Assert.Equal(before, (await cluster.Master.Operator(OperatorMethods.GetRoles, new GetRolesRequest())).Roles.Select(r => r.Name).ToList());
        await cluster.Master.AssertAccountingAsync();
    }
}
