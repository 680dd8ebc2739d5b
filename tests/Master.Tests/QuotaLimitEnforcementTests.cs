using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Scheduler.Protocol;
using Grpc.Core;
using Xunit;

namespace Scheduler.Master.Tests;

/// <summary>Lowering a role's quota limit bounds what the role holds: outstanding offers above the
/// new limit are rescinded, and a limit below what running tasks hold needs force.</summary>
public sealed class QuotaLimitEnforcementTests
{
    private static UpdateQuotaRequest CpuLimit(string role, double cpus, bool force = false) =>
        new() { Quotas = { new QuotaInfo { Role = role, Limits = { Res.Scalar("cpus", cpus) } } }, Force = force };

    [Fact]
    public async Task Lowering_a_limit_rescinds_the_offers_above_it_and_later_offers_stay_within_it()
    {
        await using var cluster = await Cluster.StartAsync();
        var agent = await cluster.AddAgentAsync(cpus: 4, mem: 4096);
        agent.AutoFinish = false;
        var fw = await cluster.AddFrameworkAsync();
        var first = await fw.NextOfferAsync();
        await fw.AcceptAsync([first.Id], [TestFramework.MockTask("t1", first, Res.Of(1, 128))], refuseSeconds: 0);
        await fw.AckUntilAsync("t1", TaskState.TaskRunning);
        var held = await fw.NextOfferAsync(match: o => o.Id != first.Id);
        Assert.Equal(3, Res.Get(held.Resources, "cpus"));

        // 1 cpu running + 3 offered > 2: the outstanding offer goes.
        await cluster.Master.Operator(OperatorMethods.UpdateQuota, CpuLimit("default", 2));
        await fw.Events.TakeAsync(e => e.EventCase == Event.EventOneofCase.Rescind && e.Rescind.OfferId == held.Id, what: $"the rescind of {held.Id}");
        var next = await fw.NextOfferAsync(match: o => o.Id != first.Id && o.Id != held.Id);
        Assert.True(Res.Get(next.Resources, "cpus") <= 1 + 1e-9, $"an offer of {Res.Get(next.Resources, "cpus")} cpus exceeds what the limit leaves (1)");
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task A_limit_below_what_running_tasks_hold_needs_force()
    {
        await using var cluster = await Cluster.StartAsync();
        var agent = await cluster.AddAgentAsync(cpus: 4, mem: 4096);
        agent.AutoFinish = false;
        var fw = await cluster.AddFrameworkAsync();
        var offer = await fw.NextOfferAsync();
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("t1", offer, Res.Of(2, 128))], refuseSeconds: 0);
        await fw.AckUntilAsync("t1", TaskState.TaskRunning);
        await fw.NextOfferAsync(match: o => o.Id != offer.Id); // the other 2 cpus, outstanding

        var refused = await Assert.ThrowsAsync<RpcException>(() => cluster.Master.Operator(OperatorMethods.UpdateQuota, CpuLimit("default", 1)));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains("pass force", refused.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain((await cluster.Master.Operator(OperatorMethods.GetQuota, new GetQuotaRequest())).Quotas, q => q.Role == "default");

        // Forced: set, and every offer of the role is rescinded (it is over its limit already).
        await cluster.Master.Operator(OperatorMethods.UpdateQuota, CpuLimit("default", 1, force: true));
        Assert.Contains((await cluster.Master.Operator(OperatorMethods.GetQuota, new GetQuotaRequest())).Quotas, q => q.Role == "default");
        await Poll.UntilAsync(async () => (await cluster.Master.GetAgentsAsync()).All(a => Res.Get(a.Offered, "cpus") == 0), TimeSpan.FromSeconds(10), "no cpus offered to the role over its limit");
    }
}
