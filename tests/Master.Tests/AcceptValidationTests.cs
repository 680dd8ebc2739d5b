using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Grpc.Core;
using Xunit;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Tests;

/// <summary>Every way an Accept can be wrong gets a specific status, reason and message, and the
/// agent's resource accounting stays exact.</summary>
public sealed class AcceptValidationTests
{
    private static async Task<(Cluster Cluster, TestAgentLink Agent, TestFramework Fw, Offer Offer)> SetupAsync(Action<MasterOptions>? configure = null)
    {
        var cluster = await Cluster.StartAsync(configure);
        var agent = await cluster.AddAgentAsync();
        var fw = await cluster.AddFrameworkAsync();
        var offer = await fw.NextOfferAsync();
        return (cluster, agent, fw, offer);
    }

    [Fact]
    public async Task Unknown_offer_id_drops_the_tasks_naming_the_offer()
    {
        var (cluster, _, fw, offer) = await SetupAsync();
        await using var scope = cluster;
        await fw.AcceptAsync(["no-such-offer"], [TestFramework.MockTask("t1", offer, Res.Of(1, 100))]);
        var update = await fw.NextUpdateAsync("t1", TaskState.TaskDropped);
        Assert.Equal(TaskStatus.Types.Reason.InvalidOffers, update.Reason);
        Assert.Equal(TaskStatus.Types.Source.Master, update.Source);
        Assert.Empty(update.Uuid);
        Assert.Contains("no-such-offer", update.Message, StringComparison.Ordinal);
        Assert.Contains("unknown", update.Message, StringComparison.Ordinal);
        await cluster.Master.AssertAccountingAsync();
        // The real offer is untouched and still usable.
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("t2", offer, Res.Of(1, 100))]);
        await fw.NextUpdateAsync("t2", TaskState.TaskStarting);
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task Expired_offer_is_rescinded_and_then_refused()
    {
        var (cluster, _, fw, offer) = await SetupAsync(o => o.OfferTimeout = TimeSpan.FromMilliseconds(300));
        await using var scope = cluster;
        await fw.Events.TakeAsync(e => e.EventCase == Event.EventOneofCase.Rescind && e.Rescind.OfferId == offer.Id, what: "rescind");
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("t1", offer, Res.Of(1, 100))]);
        var update = await fw.NextUpdateAsync("t1", TaskState.TaskDropped);
        Assert.Equal(TaskStatus.Types.Reason.InvalidOffers, update.Reason);
        Assert.Contains(offer.Id, update.Message, StringComparison.Ordinal);
        Assert.Contains("expired", update.Message, StringComparison.Ordinal);
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task Offer_of_another_framework_is_refused_and_left_alone()
    {
        var (cluster, _, fw, offer) = await SetupAsync();
        await using var scope = cluster;
        var other = await cluster.AddFrameworkAsync(TestFramework.DefaultInfo("other"));
        await other.AcceptAsync([offer.Id], [TestFramework.MockTask("stolen", offer, Res.Of(1, 100))]);
        var update = await other.NextUpdateAsync("stolen", TaskState.TaskDropped);
        Assert.Equal(TaskStatus.Types.Reason.InvalidOffers, update.Reason);
        Assert.Contains("another framework", update.Message, StringComparison.Ordinal);
        await cluster.Master.AssertAccountingAsync();
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("mine", offer, Res.Of(1, 100))]);
        await fw.NextUpdateAsync("mine", TaskState.TaskStarting);
    }

    [Fact]
    public async Task Offer_used_twice_is_refused_the_second_time()
    {
        var (cluster, _, fw, offer) = await SetupAsync();
        await using var scope = cluster;
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("t1", offer, Res.Of(1, 100))]);
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("t2", offer, Res.Of(1, 100))]);
        var update = await fw.NextUpdateAsync("t2", TaskState.TaskDropped);
        Assert.Equal(TaskStatus.Types.Reason.InvalidOffers, update.Reason);
        Assert.Contains("already used", update.Message, StringComparison.Ordinal);
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task Offers_from_two_agents_in_one_accept_are_refused()
    {
        await using var cluster = await Cluster.StartAsync();
        var a1 = await cluster.AddAgentAsync(hostname: "h1");
        var a2 = await cluster.AddAgentAsync(hostname: "h2");
        var fw = await cluster.AddFrameworkAsync();
        var o1 = await fw.NextOfferAsync(match: o => o.AgentId == a1.AgentId);
        var o2 = await fw.NextOfferAsync(match: o => o.AgentId == a2.AgentId);
        await fw.AcceptAsync([o1.Id, o2.Id], [TestFramework.MockTask("t1", o1, Res.Of(1, 100))]);
        var update = await fw.NextUpdateAsync("t1", TaskState.TaskDropped);
        Assert.Equal(TaskStatus.Types.Reason.InvalidOffers, update.Reason);
        Assert.Contains("different agents", update.Message, StringComparison.Ordinal);
        await cluster.Master.AssertAccountingAsync();
        // Both offers went back to the allocator (no filter) and come again.
        await fw.NextOfferAsync(match: o => o.AgentId == a1.AgentId);
        await fw.NextOfferAsync(match: o => o.AgentId == a2.AgentId);
    }

    [Fact]
    public async Task Task_needing_more_than_offered_gets_resources_exceeded()
    {
        var (cluster, agent, fw, offer) = await SetupAsync();
        await using var scope = cluster;
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("big", offer, Res.Of(8, 100))]);
        var update = await fw.NextUpdateAsync("big", TaskState.TaskError);
        Assert.Equal(TaskStatus.Types.Reason.ResourcesExceeded, update.Reason);
        Assert.Contains("cpus", update.Message, StringComparison.Ordinal);
        Assert.Contains("needs 8", update.Message, StringComparison.Ordinal);
        Assert.True(await agent.Messages.NoneWithinAsync(m => m.MessageCase == MasterMessage.MessageOneofCase.Launch, TimeSpan.FromMilliseconds(200)));
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task Tasks_of_one_call_share_the_offer_and_the_second_may_not_fit()
    {
        var (cluster, _, fw, offer) = await SetupAsync();
        await using var scope = cluster;
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("a", offer, Res.Of(3, 100)), TestFramework.MockTask("b", offer, Res.Of(3, 100))]);
        await fw.NextUpdateAsync("a", TaskState.TaskStarting);
        var b = await fw.NextUpdateAsync("b", TaskState.TaskError);
        Assert.Equal(TaskStatus.Types.Reason.ResourcesExceeded, b.Reason);
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task Duplicate_task_id_is_refused_with_the_live_tasks_state_never_a_terminal_one()
    {
        var (cluster, agent, fw, offer) = await SetupAsync();
        await using var scope = cluster;
        agent.AutoFinish = false;
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("dup", offer, Res.Of(1, 100)), TestFramework.MockTask("dup", offer, Res.Of(1, 100))]);
        var second = await fw.NextUpdateAsync(s => s.TaskId == "dup" && s.Reason == TaskStatus.Types.Reason.DuplicateTaskId, what: "the refusal of the second 'dup'");
        Assert.Equal(TaskState.TaskStaging, second.State);
        Assert.Contains("'dup'", second.Message, StringComparison.Ordinal);
        Assert.Contains("already used by a live task", second.Message, StringComparison.Ordinal);
        await fw.NextUpdateAsync("dup", TaskState.TaskStarting);

        // Again in a later call, while the first "dup" is live: the answer is its state, STARTING.
        await fw.ReviveAsync();
        var next = await fw.NextOfferAsync();
        await fw.AcceptAsync([next.Id], [TestFramework.MockTask("dup", next, Res.Of(1, 100))]);
        var third = await fw.NextUpdateAsync(s => s.TaskId == "dup" && s.Reason == TaskStatus.Types.Reason.DuplicateTaskId, what: "the refusal of the third 'dup'");
        Assert.Equal(TaskState.TaskStarting, third.State);
        Assert.Empty(third.Uuid);
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task An_accept_repeated_with_spent_offers_answers_the_live_task_not_task_dropped()
    {
        var (cluster, agent, fw, offer) = await SetupAsync();
        await using var scope = cluster;
        agent.AutoFinish = false;
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("web", offer, Res.Of(1, 100))]);
        await fw.NextUpdateAsync("web", TaskState.TaskStarting);

        // The same call again (as a framework repeats an Accept whose answer it lost): its offer is spent.
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("web", offer, Res.Of(1, 100)), TestFramework.MockTask("web2", offer, Res.Of(1, 100))]);
        var repeat = await fw.NextUpdateAsync(s => s.TaskId == "web" && s.Reason == TaskStatus.Types.Reason.DuplicateTaskId, what: "the answer for the live 'web'");
        Assert.Equal(TaskState.TaskStarting, repeat.State);
        Assert.Contains(offer.Id, repeat.Message, StringComparison.Ordinal);
        var fresh = await fw.NextUpdateAsync("web2", TaskState.TaskDropped);
        Assert.Equal(TaskStatus.Types.Reason.InvalidOffers, fresh.Reason);
        Assert.True(await fw.Events.NoneWithinAsync(e => e.EventCase == Event.EventOneofCase.Update && e.Update.Status.TaskId == "web" && e.Update.Status.State != TaskState.TaskStarting, TimeSpan.FromMilliseconds(200)));
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task Task_without_command_is_invalid()
    {
        var (cluster, _, fw, offer) = await SetupAsync();
        await using var scope = cluster;
        var task = new TaskInfo { TaskId = "nocmd", AgentId = offer.AgentId, Resources = { Res.Of(1, 100) } };
        await fw.AcceptAsync([offer.Id], [task]);
        var update = await fw.NextUpdateAsync("nocmd", TaskState.TaskError);
        Assert.Equal(TaskStatus.Types.Reason.TaskInvalid, update.Reason);
        Assert.Contains("no command", update.Message, StringComparison.Ordinal);
        await cluster.Master.AssertAccountingAsync();
    }

    [Theory]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public async Task Bad_resource_values_are_invalid(double cpus)
    {
        var (cluster, _, fw, offer) = await SetupAsync();
        await using var scope = cluster;
        await fw.AcceptAsync([offer.Id], [TestFramework.MockTask("bad", offer, [Res.Scalar("cpus", cpus), Res.Scalar("mem", 10)])]);
        var update = await fw.NextUpdateAsync("bad", TaskState.TaskError);
        Assert.Equal(TaskStatus.Types.Reason.TaskInvalid, update.Reason);
        Assert.Contains("cpus", update.Message, StringComparison.Ordinal);
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task Calls_with_a_stale_stream_id_fail_with_failed_precondition()
    {
        var (cluster, _, fw, offer) = await SetupAsync();
        await using var scope = cluster;
        var request = new AcceptRequest { FrameworkId = fw.FrameworkId, StreamId = "not-the-stream", OfferIds = { offer.Id } };
        var e = await Assert.ThrowsAsync<RpcException>(() => fw.AcceptAsync(request));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Contains("re-subscribe", e.Status.Detail, StringComparison.Ordinal);

        var unknown = new AcceptRequest { FrameworkId = "fw-unknown", StreamId = fw.StreamId, OfferIds = { offer.Id } };
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(() => fw.AcceptAsync(unknown))).StatusCode);

        var empty = new AcceptRequest { FrameworkId = fw.FrameworkId, StreamId = fw.StreamId };
        Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() => fw.AcceptAsync(empty))).StatusCode);
        await cluster.Master.AssertAccountingAsync();
    }

    [Fact]
    public async Task Reconcile_with_an_unknown_agent_answers_task_unknown()
    {
        var (cluster, _, fw, _) = await SetupAsync();
        await using var scope = cluster;
        await fw.ReconcileAsync(("t-x", "agent-nope"), ("t-y", ""));
        var x = await fw.NextUpdateAsync("t-x", TaskState.TaskUnknown);
        Assert.Equal(TaskStatus.Types.Reason.Reconciliation, x.Reason);
        Assert.Contains("agent-nope", x.Message, StringComparison.Ordinal);
        Assert.Empty(x.Uuid);
        var y = await fw.NextUpdateAsync("t-y", TaskState.TaskUnknown);
        Assert.Contains("not known", y.Message, StringComparison.Ordinal);
    }
}
