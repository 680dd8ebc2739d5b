using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Scheduler.Protocol;
using Grpc.Core;
using Xunit;
using Scheduler.Channels;

namespace Scheduler.Master.Tests;

public sealed class OperatorTests
{
    [Fact]
    public async Task Health_leader_and_state_describe_the_cluster()
    {
        await using var cluster = await Cluster.StartAsync();
        var agent = await cluster.AddAgentAsync();
        agent.AutoFinish = false;
        var fw = await cluster.AddFrameworkAsync();
        var offer = await fw.NextOfferAsync();
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("t1", offer, Res.Of(1, 100))]);
        await fw.AckUntilAsync("t1", TaskState.TaskRunning);

        var health = await cluster.Master.Operator(OperatorMethods.GetHealth, new GetHealthRequest());
        Assert.True(health.Healthy);
        Assert.Equal("standalone", health.Role);
        Assert.Equal(cluster.Master.Address, health.Master.Address);

        var leader = await cluster.Master.Operator(OperatorMethods.GetLeader, new GetLeaderRequest());
        Assert.True(leader.IsSelf);
        Assert.Equal(cluster.Master.Address, leader.Leader.Address);

        var state = await cluster.Master.Operator(OperatorMethods.GetState, new GetStateRequest());
        Assert.Equal(agent.AgentId, Assert.Single(state.Agents).Info.Id);
        Assert.Equal(fw.FrameworkId, Assert.Single(state.Frameworks).Info.Id);
        Assert.Equal("t1", Assert.Single(state.Tasks).TaskId);
        Assert.Contains(state.Roles, r => r.Name == "default");

        Assert.Single(await cluster.Master.GetTasksAsync(new GetTasksRequest { FrameworkId = fw.FrameworkId, State = TaskState.TaskRunning }));
        Assert.Empty(await cluster.Master.GetTasksAsync(new GetTasksRequest { AgentId = "agent-other" }));
        Assert.Empty(await cluster.Master.GetTasksAsync(new GetTasksRequest { State = TaskState.TaskFinished }));

        var roles = await cluster.Master.Operator(OperatorMethods.GetRoles, new GetRolesRequest());
        var role = Assert.Single(roles.Roles, r => r.Name == "default");
        Assert.Contains(fw.FrameworkId, role.Frameworks);
        Assert.Equal(1, Res.Get(role.Allocated, "cpus"), 3);
    }

    [Fact]
    public async Task Operator_subscribe_sends_a_snapshot_then_changes()
    {
        await using var cluster = await Cluster.StartAsync();
        var events = new EventLog<OperatorEvent>();
        using var cts = new CancellationTokenSource();
        using var call = cluster.Master.Channel.AsyncServerStreamingCall(OperatorMethods.Subscribe, new OperatorSubscribeRequest(), new CallOptions(cancellationToken: cts.Token));
        var pump = Task.Run(async () =>
        {
            try
            {
                while (await call.ResponseStream.MoveNext(cts.Token))
                {
                    events.Add(call.ResponseStream.Current);
                }
            }
            catch (Exception e)
            {
                events.End(e);
            }
        });
        var snapshot = await events.TakeAsync(e => e.EventCase == OperatorEvent.EventOneofCase.Subscribed, what: "snapshot");
        Assert.Empty(snapshot.Subscribed.Agents);
        var agent = await cluster.AddAgentAsync();
        var added = await events.TakeAsync(e => e.EventCase == OperatorEvent.EventOneofCase.AgentAdded, what: "agent added");
        Assert.Equal(agent.AgentId, added.AgentAdded.Agent.Info.Id);
        await cluster.AddFrameworkAsync();
        await events.TakeAsync(e => e.EventCase == OperatorEvent.EventOneofCase.FrameworkAdded, what: "framework added");
        await cts.CancelAsync();
        await pump;
    }

    [Fact]
    public async Task Quota_and_weights_are_validated()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.AddAgentAsync(cpus: 4, mem: 4096);
        var badWeight = await Assert.ThrowsAsync<RpcException>(() => cluster.Master.Operator(OperatorMethods.UpdateWeights,
            new UpdateWeightsRequest { Weights = { new WeightInfo { Role = "eng", Weight = -1 } } }));
        Assert.Equal(StatusCode.InvalidArgument, badWeight.StatusCode);
        Assert.Contains("from 0.001 to 1000", badWeight.Status.Detail, StringComparison.Ordinal);

        var badRole = await Assert.ThrowsAsync<RpcException>(() => cluster.Master.Operator(OperatorMethods.UpdateWeights,
            new UpdateWeightsRequest { Weights = { new WeightInfo { Role = "eng//x", Weight = 1 } } }));
        Assert.Equal(StatusCode.InvalidArgument, badRole.StatusCode);

        var tooBig = await Assert.ThrowsAsync<RpcException>(() => cluster.Master.Operator(OperatorMethods.UpdateQuota,
            new UpdateQuotaRequest { Quotas = { new QuotaInfo { Role = "eng", Guarantees = { Res.Scalar("cpus", 100) } } } }));
        Assert.Equal(StatusCode.FailedPrecondition, tooBig.StatusCode);
        Assert.Contains("force", tooBig.Status.Detail, StringComparison.Ordinal);

        var inverted = await Assert.ThrowsAsync<RpcException>(() => cluster.Master.Operator(OperatorMethods.UpdateQuota,
            new UpdateQuotaRequest { Quotas = { new QuotaInfo { Role = "eng", Guarantees = { Res.Scalar("cpus", 2) }, Limits = { Res.Scalar("cpus", 1) } } } }));
        Assert.Equal(StatusCode.InvalidArgument, inverted.StatusCode);

        await cluster.Master.Operator(OperatorMethods.UpdateQuota,
            new UpdateQuotaRequest { Quotas = { new QuotaInfo { Role = "eng", Guarantees = { Res.Scalar("cpus", 2) } } } });
        var quota = await cluster.Master.Operator(OperatorMethods.GetQuota, new GetQuotaRequest());
        Assert.Equal(2, Res.Get(Assert.Single(quota.Quotas).Guarantees, "cpus"));
    }

    /// <summary>A quota the allocator refuses (a resource that cannot have one) used to be
    /// stored before the allocator threw: the caller got UNKNOWN and the role showed the quota.
    /// Now the whole request is checked first, refused with INVALID_ARGUMENT and the reason, and
    /// leaves nothing behind — not even when a valid quota comes before it in the same request.</summary>
    [Fact]
    public async Task A_refused_quota_is_invalid_argument_with_the_reason_and_changes_nothing()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.AddAgentAsync(cpus: 4, mem: 4096);
        var bogus = await Assert.ThrowsAsync<RpcException>(() => cluster.Master.Operator(OperatorMethods.UpdateQuota,
            new UpdateQuotaRequest { Quotas = { new QuotaInfo { Role = "r1", Limits = { Res.Scalar("bogus", 5) } } } }));
        Assert.Equal(StatusCode.InvalidArgument, bogus.StatusCode);
        Assert.Contains("'bogus' cannot have a quota", bogus.Status.Detail, StringComparison.Ordinal);

        var mixed = await Assert.ThrowsAsync<RpcException>(() => cluster.Master.Operator(OperatorMethods.UpdateQuota,
            new UpdateQuotaRequest
            {
                Quotas =
                {
                    new QuotaInfo { Role = "r2", Limits = { Res.Scalar("cpus", 1) } },
                    new QuotaInfo { Role = "r3", Limits = { Res.Scalar("bogus", 5) } },
                },
            }));
        Assert.Equal(StatusCode.InvalidArgument, mixed.StatusCode);

        Assert.Empty((await cluster.Master.Operator(OperatorMethods.GetQuota, new GetQuotaRequest())).Quotas);
        var roles = await cluster.Master.Operator(OperatorMethods.GetRoles, new GetRolesRequest());
        Assert.DoesNotContain(roles.Roles, r => r.Quota is not null);
        Assert.DoesNotContain(roles.Roles, r => r.Name is "r1" or "r2" or "r3");
    }

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(1e-9)]
    [InlineData(1e9)]
    public async Task Weights_out_of_bounds_are_refused_and_change_nothing(double weight)
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.AddAgentAsync(cpus: 4, mem: 4096);
        await cluster.Master.Operator(OperatorMethods.UpdateWeights, new UpdateWeightsRequest { Weights = { new WeightInfo { Role = "eng", Weight = 2 } } });
        var e = await Assert.ThrowsAsync<RpcException>(() => cluster.Master.Operator(OperatorMethods.UpdateWeights,
            new UpdateWeightsRequest { Weights = { new WeightInfo { Role = "ops", Weight = 1 }, new WeightInfo { Role = "eng", Weight = weight } } }));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("from 0.001 to 1000", e.Status.Detail, StringComparison.Ordinal);
        var roles = await cluster.Master.Operator(OperatorMethods.GetRoles, new GetRolesRequest());
        Assert.Equal(2, roles.Roles.Single(r => r.Name == "eng").Weight);
        Assert.DoesNotContain(roles.Roles, r => r.Name == "ops");
    }
}
