using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Xunit;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Tests.Direct;

/// <summary>
/// The master's clocks, driven directly on virtual time: agent timeouts and pings, the
/// re-registration window after a failover, framework failover deadlines, offer timeouts and
/// decline filters. No test waits on the wall clock; each takes milliseconds.
/// </summary>
public sealed class VirtualTimeTests
{
    private static async Task<(DirectAgent Agent, DirectFramework Framework, Offer Offer)> OneOfferAsync(DirectMaster master, double failoverTimeout = 60)
    {
        var agent = new DirectAgent(master, Res.Of(4, 1024));
        Assert.NotNull(await agent.RegisterAsync());
        var fw = DirectFramework.For(master, failoverTimeoutSeconds: failoverTimeout);
        await fw.SubscribeAsync();
        await master.AllocateAsync();
        fw.Drain();
        return (agent, fw, Assert.Single(fw.Offers.Values));
    }

    [Fact]
    public async Task A_silent_agent_is_marked_unreachable_after_the_agent_timeout_and_a_pinging_one_is_not()
    {
        await using var master = await DirectMaster.StartAsync(o =>
        {
            o.HeartbeatInterval = TimeSpan.FromSeconds(1);
            o.AgentTimeout = TimeSpan.FromSeconds(5);
        });
        var alive = new DirectAgent(master, Res.Of(1, 128), "alive");
        var silent = new DirectAgent(master, Res.Of(1, 128), "silent") { Silent = true };
        await alive.RegisterAsync();
        await silent.RegisterAsync();
        var ping = alive.Heartbeat();
        Assert.NotNull(ping);
        Assert.Equal(1.0, ping.HeartbeatIntervalSeconds);

        await master.AdvanceAsync(TimeSpan.FromSeconds(4));
        var agents = await master.On(l => l.GetAgents().Agents.ToDictionary(a => a.Info.Id, a => a.Status));
        Assert.Equal(AgentStatus.AgentActive, agents[silent.Id]); // 4 s of silence: within the timeout

        await master.AdvanceAsync(TimeSpan.FromSeconds(3));
        var state = await master.On(l => l.GetAgents().Agents.ToDictionary(a => a.Info.Id));
        Assert.Equal(AgentStatus.AgentUnreachable, state[silent.Id].Status);
        Assert.Equal(AgentStatus.AgentActive, state[alive.Id].Status);
        // The heartbeat time is the fake clock's, in epoch seconds.
        Assert.Equal(master.Time.GetUtcNow().ToUnixTimeSeconds(), (long)state[alive.Id].LastHeartbeatTime);
        Assert.False(silent.Connected);
    }

    [Fact]
    public async Task Agents_that_do_not_re_register_after_a_failover_become_unreachable_at_the_re_registration_timeout()
    {
        await using var master = await DirectMaster.StartAsync(o => o.AgentReregisterTimeout = TimeSpan.FromSeconds(10));
        var (agent, fw, offer) = await OneOfferAsync(master);
        var back = new DirectAgent(master, Res.Of(2, 256), "back");
        await back.RegisterAsync();
        await fw.AcceptAsync([offer.Id], [DirectFramework.Task("t1", offer, Res.Of(1, 128))]);
        await agent.ProcessAsync();

        await master.FailoverAsync();
        Assert.True(await master.On(l => l.Recovering));
        await back.RegisterAsync();
        await fw.SubscribeAsync();

        // Until the window closes the master cannot tell whether t1 still runs: no answer.
        await fw.ReconcileAsync();
        await master.On(l => l.Reconcile(new ReconcileRequest { FrameworkId = fw.Id, StreamId = fw.StreamId, Tasks = { new ReconcileRequest.Types.Task { TaskId = "t1", AgentId = agent.Id } } }));
        fw.Drain();
        Assert.DoesNotContain("t1", fw.Latest.Keys);

        await master.AdvanceAsync(TimeSpan.FromSeconds(9));
        Assert.True(await master.On(l => l.Recovering));
        await master.AdvanceAsync(TimeSpan.FromSeconds(1.5));
        Assert.False(await master.On(l => l.Recovering));
        var agents = await master.On(l => l.GetAgents().Agents.ToDictionary(a => a.Info.Id, a => a.Status));
        Assert.Equal(AgentStatus.AgentUnreachable, agents[agent.Id]);
        Assert.Equal(AgentStatus.AgentActive, agents[back.Id]);

        await master.On(l => l.Reconcile(new ReconcileRequest { FrameworkId = fw.Id, StreamId = fw.StreamId, Tasks = { new ReconcileRequest.Types.Task { TaskId = "t1", AgentId = agent.Id } } }));
        fw.Drain();
        Assert.Equal(TaskState.TaskUnreachable, fw.Latest["t1"].State);
    }

    [Fact]
    public async Task A_disconnected_framework_is_removed_at_its_failover_deadline_not_before()
    {
        await using var master = await DirectMaster.StartAsync();
        var (agent, fw, offer) = await OneOfferAsync(master, failoverTimeout: 30);
        await fw.AcceptAsync([offer.Id], [DirectFramework.Task("t1", offer, Res.Of(1, 128))]);
        await agent.ProcessAsync();
        await agent.SendStatusAsync(fw.Id, "t1", TaskState.TaskRunning);

        await fw.DisconnectAsync();
        await master.AdvanceAsync(TimeSpan.FromSeconds(29));
        var frameworks = await master.On(l => l.GetFrameworks().Frameworks.Select(f => f.Info.Id).ToList());
        Assert.Contains(fw.Id, frameworks);
        Assert.DoesNotContain(agent.Drain(), m => m.MessageCase == MasterMessage.MessageOneofCase.ShutdownFramework);

        await master.AdvanceAsync(TimeSpan.FromSeconds(1.5));
        frameworks = await master.On(l => l.GetFrameworks().Frameworks.Select(f => f.Info.Id).ToList());
        Assert.DoesNotContain(fw.Id, frameworks);
        var shutdown = Assert.Single(agent.Received, m => m.MessageCase == MasterMessage.MessageOneofCase.ShutdownFramework);
        Assert.Equal(TaskStatus.Types.Reason.FrameworkFailoverTimeout, shutdown.ShutdownFramework.Reason);
        // Its resources are free again: a new framework is offered the whole agent.
        var other = DirectFramework.For(master, role: "batch");
        await other.SubscribeAsync();
        await master.AllocateAsync();
        other.Drain();
        Assert.Equal(4, Res.Get(Assert.Single(other.Offers.Values).Resources, "cpus"));
    }

    [Fact]
    public async Task A_reconnecting_framework_keeps_its_tasks_when_it_is_back_before_the_deadline()
    {
        await using var master = await DirectMaster.StartAsync();
        var (agent, fw, offer) = await OneOfferAsync(master, failoverTimeout: 30);
        await fw.AcceptAsync([offer.Id], [DirectFramework.Task("t1", offer, Res.Of(1, 128))]);
        await agent.ProcessAsync();
        await fw.DisconnectAsync();
        await master.AdvanceAsync(TimeSpan.FromSeconds(29));
        await fw.SubscribeAsync();
        await master.AdvanceAsync(TimeSpan.FromSeconds(60));
        var tasks = await master.On(l => l.GetTasks(new GetTasksRequest()).Tasks.Select(t => t.TaskId).ToList());
        Assert.Equal(["t1"], tasks);
    }

    [Fact]
    public async Task An_offer_is_rescinded_at_the_offer_timeout_and_its_resources_offered_again()
    {
        await using var master = await DirectMaster.StartAsync(o => o.OfferTimeout = TimeSpan.FromSeconds(10));
        var (_, fw, offer) = await OneOfferAsync(master);

        await master.AdvanceAsync(TimeSpan.FromSeconds(9));
        fw.Drain();
        Assert.Contains(offer.Id, fw.Offers.Keys);

        await master.AdvanceAsync(TimeSpan.FromSeconds(1.5));
        var events = fw.Drain();
        Assert.Contains(events, e => e.EventCase == Event.EventOneofCase.Rescind && e.Rescind.OfferId == offer.Id);
        // The next allocation cycle (run by the ticker) offers the resources again.
        await master.AdvanceAsync(master.Options.AllocationInterval * 2);
        fw.Drain();
        var again = Assert.Single(fw.Offers.Values);
        Assert.NotEqual(offer.Id, again.Id);

        // A late Accept of the rescinded offer is told why it is no longer valid.
        await fw.AcceptAsync([offer.Id], [DirectFramework.Task("late", offer, Res.Of(1, 128))]);
        Assert.Equal(TaskState.TaskDropped, fw.Latest["late"].State);
        Assert.Contains("expired", fw.Latest["late"].Message);
    }

    [Fact]
    public async Task Declined_resources_are_not_offered_to_the_framework_again_until_the_filter_expires()
    {
        await using var master = await DirectMaster.StartAsync();
        var (_, fw, offer) = await OneOfferAsync(master);
        await fw.DeclineAsync([offer.Id], refuseSeconds: 20);

        await master.AdvanceAsync(TimeSpan.FromSeconds(19));
        await master.AllocateAsync();
        fw.Drain();
        Assert.Empty(fw.Offers);

        await master.AdvanceAsync(TimeSpan.FromSeconds(1.5));
        await master.AllocateAsync();
        fw.Drain();
        Assert.Single(fw.Offers);
    }

    [Fact]
    public async Task Declining_with_refuse_seconds_zero_installs_no_filter()
    {
        await using var master = await DirectMaster.StartAsync();
        var (_, fw, offer) = await OneOfferAsync(master);
        await fw.DeclineAsync([offer.Id], refuseSeconds: 0);
        await master.AllocateAsync();
        fw.Drain();
        Assert.Single(fw.Offers);
    }
}
