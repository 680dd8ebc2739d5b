using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Scheduler.Protocol;
using Grpc.Core;
using Xunit;

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
        Assert.Contains("positive", badWeight.Status.Detail, StringComparison.Ordinal);

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
}
