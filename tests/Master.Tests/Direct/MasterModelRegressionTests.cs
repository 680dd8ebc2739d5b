using Sched.V1;
using Xunit;

namespace Scheduler.Master.Tests.Direct;

/// <summary>Sequences <see cref="MasterModelTests"/> shrank failures to, replayed as found (each
/// is deterministic: the allocator's agent order comes from its seeded Random).</summary>
public sealed class MasterModelRegressionTests
{
    /// <summary>
    /// web (guarantee = limit = 3 cpus) is offered 3 cpus on host1, so its limit holds host0's
    /// 3 cpus back; host1 then becomes unreachable and its offer is rescinded. The next pass must
    /// offer host0's cpus to web, though nothing changed on host0 itself.
    /// </summary>
    [Fact]
    public Task A_role_held_back_by_its_limit_is_offered_the_room_freed_on_an_agent_that_became_unreachable() =>
        MasterModel.RunAsync(new MasterScenario(
        [
            new MasterStep.AddAgent(3, 1024),
            new MasterStep.AddAgent(4, 1024),
            new MasterStep.SetQuota(Role: 0, Guarantee: 3, Limit: 3),
            new MasterStep.AddFramework(0),
            new MasterStep.AgentDisconnects(5),
            new MasterStep.Advance(25),
            new MasterStep.Allocate(),
        ]));

    /// <summary>
    /// batch (limit 1 cpu) launches a 1-cpu task on host3; after a failover it is offered 1 cpu on
    /// a new agent before host3 is back. When host3 re-registers with the task, that offer would
    /// keep batch above its limit: it must be rescinded.
    /// </summary>
    [Fact]
    public Task Offers_above_a_limit_are_rescinded_when_an_agent_returns_after_a_failover_with_the_roles_tasks() =>
        MasterModel.RunAsync(new MasterScenario(
        [
            new MasterStep.AddAgent(2, 1024),
            new MasterStep.AddAgent(3, 1024),
            new MasterStep.AddAgent(4, 1024),
            new MasterStep.AddAgent(3, 512),
            new MasterStep.SetQuota(Role: 1, Guarantee: 1, Limit: 1),
            new MasterStep.Failover(),
            new MasterStep.AddFramework(1),
            new MasterStep.AgentReturns(3),
            new MasterStep.Allocate(),
            new MasterStep.Accept(Framework: 4, Offer: 0, Tasks: 2, Cpus: 1),
            new MasterStep.Failover(),
            new MasterStep.AddAgent(1, 512),
            new MasterStep.FrameworkReturns(4),
            new MasterStep.Advance(1),
            new MasterStep.AgentReturns(3),
        ]));

    /// <summary>
    /// t1 fails and its update is acknowledged, so host0 forgets it; after a failover the framework
    /// kills t1 and the new master, which never heard of it, answers TASK_UNKNOWN. The framework did
    /// hear TASK_FAILED: the update was delivered.
    /// </summary>
    [Fact]
    public Task A_task_forgotten_after_its_acknowledged_terminal_update_may_be_answered_unknown_after_a_failover() =>
        MasterModel.RunAsync(new MasterScenario(
        [
            new MasterStep.AddAgent(2, 1024),
            new MasterStep.AddFramework(1),
            new MasterStep.Allocate(),
            new MasterStep.Accept(Framework: 1, Offer: 3, Tasks: 2, Cpus: 2),
            new MasterStep.Update(Agent: 4, Task: 1, TaskState.TaskFailed),
            new MasterStep.Acknowledge(7),
            new MasterStep.Failover(),
            new MasterStep.FrameworkReturns(3),
            new MasterStep.AgentReturns(4),
            new MasterStep.Kill(Framework: 2, Task: 8),
        ]));
}
