using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Scheduler.Protocol;
using Grpc.Core;
using Xunit;

namespace Scheduler.Master.Tests;

/// <summary>Operator.ReserveResources / UnreserveResources on an agent's unused resources.</summary>
public sealed class OperatorReservationTests
{
    private static Resource Reserved(string name, double value, string role, Reservation.Types.Type type = Reservation.Types.Type.Unspecified) =>
        new() { Name = name, Scalar = value, Reservation = new Reservation { Type = type, Role = role, Principal = "admin" } };

    [Fact]
    public async Task An_operator_reservation_rescinds_offers_and_is_offered_only_to_its_role_until_unreserved()
    {
        await using var cluster = await Cluster.StartAsync();
        var agent = await cluster.AddAgentAsync(cpus: 4, mem: 1024);
        var batch = await cluster.AddFrameworkAsync(TestFramework.DefaultInfo("batch"));
        var first = await batch.NextOfferAsync();

        var reserved = await cluster.Master.Operator(OperatorMethods.ReserveResources,
            new ReserveResourcesRequest { AgentId = agent.AgentId, Resources = { Reserved("cpus", 3, "web"), Reserved("mem", 512, "web") } });
        Assert.Contains(reserved.Total, r => r.Name == "cpus" && r.Reservation?.Type == Reservation.Types.Type.Dynamic && r.Scalar == 3);
        await batch.Events.TakeAsync(e => e.EventCase == Event.EventOneofCase.Rescind && e.Rescind.OfferId == first.Id, what: "rescind");
        var apply = await agent.Messages.TakeAsync(m => m.MessageCase == MasterMessage.MessageOneofCase.ApplyOperations, what: "apply_operations");
        Assert.Equal(2, apply.ApplyOperations.CheckpointedResources.Count);

        var next = await batch.NextOfferAsync();
        Assert.All(next.Resources, r => Assert.Null(r.Reservation));
        Assert.Equal(1, Res.Get(next.Resources, "cpus"));
        await cluster.Master.AssertAccountingAsync();

        var web = await cluster.AddFrameworkAsync(TestFramework.DefaultInfo("web"));
        var webOffer = await web.NextOfferAsync(match: o => o.Resources.Any(r => r.Reservation is not null));
        Assert.Equal(3, webOffer.Resources.Where(r => r.Reservation?.Role == "web").Sum(r => r.Scalar * (r.Name == "cpus" ? 1 : 0)));

        // In use: a task holds the reserved cpus, so they cannot be unreserved.
        var task = TestFramework.MockTask("t1", webOffer, [Reserved("cpus", 3, "web", Reservation.Types.Type.Dynamic)]);
        agent.AutoFinish = false;
        await web.AcceptAsync([webOffer.Id], [task]);
        await web.NextUpdateAsync("t1", TaskState.TaskStarting);
        var busy = await Assert.ThrowsAsync<RpcException>(() => cluster.Master.Operator(OperatorMethods.UnreserveResources,
            new UnreserveResourcesRequest { AgentId = agent.AgentId, Resources = { Reserved("cpus", 3, "web", Reservation.Types.Type.Dynamic) } }));
        Assert.Equal(StatusCode.FailedPrecondition, busy.StatusCode);
        Assert.Contains("not unused", busy.Status.Detail, StringComparison.Ordinal);

        // The unused mem reservation can go; the agent's total shows it unreserved again.
        var after = await cluster.Master.Operator(OperatorMethods.UnreserveResources,
            new UnreserveResourcesRequest { AgentId = agent.AgentId, Resources = { Reserved("mem", 512, "web", Reservation.Types.Type.Dynamic) } });
        Assert.Equal(1024, after.Total.Where(r => r.Name == "mem" && r.Reservation is null).Sum(r => r.Scalar));
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task Bad_operator_reservations_are_refused_with_what_to_do()
    {
        await using var cluster = await Cluster.StartAsync();
        var agent = await cluster.AddAgentAsync(cpus: 2, mem: 512);

        async Task<RpcException> Refused<TReq, TResp>(Method<TReq, TResp> method, TReq request)
            where TReq : class, Google.Protobuf.IMessage<TReq>
            where TResp : class, Google.Protobuf.IMessage<TResp> =>
            await Assert.ThrowsAsync<RpcException>(() => cluster.Master.Operator(method, request));

        var unknown = await Refused(OperatorMethods.ReserveResources, new ReserveResourcesRequest { AgentId = "nope", Resources = { Reserved("cpus", 1, "web") } });
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);

        var tooMuch = await Refused(OperatorMethods.ReserveResources, new ReserveResourcesRequest { AgentId = agent.AgentId, Resources = { Reserved("cpus", 5, "web") } });
        Assert.Equal(StatusCode.FailedPrecondition, tooMuch.StatusCode);
        Assert.Contains("needs 5", tooMuch.Status.Detail, StringComparison.Ordinal);

        var noRole = await Refused(OperatorMethods.ReserveResources, new ReserveResourcesRequest { AgentId = agent.AgentId, Resources = { Res.Scalar("cpus", 1) } });
        Assert.Equal(StatusCode.InvalidArgument, noRole.StatusCode);
        Assert.Contains("has no reservation", noRole.Status.Detail, StringComparison.Ordinal);

        var staticOne = await Refused(OperatorMethods.UnreserveResources,
            new UnreserveResourcesRequest { AgentId = agent.AgentId, Resources = { Reserved("cpus", 1, "web", Reservation.Types.Type.Static) } });
        Assert.Equal(StatusCode.InvalidArgument, staticOne.StatusCode);

        var notReserved = await Refused(OperatorMethods.UnreserveResources,
            new UnreserveResourcesRequest { AgentId = agent.AgentId, Resources = { Reserved("cpus", 1, "web", Reservation.Types.Type.Dynamic) } });
        Assert.Equal(StatusCode.FailedPrecondition, notReserved.StatusCode);
        Assert.Contains("holds no dynamic reservation of cpus for role 'web'", notReserved.Status.Detail, StringComparison.Ordinal);
        await cluster.Master.AssertAccountingAsync();
    }
}
