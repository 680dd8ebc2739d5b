using FsCheck;
using FsCheck.Fluent;
using Sched.V1;
using Xunit;

namespace Scheduler.Master.Tests.Direct;

/// <summary>
/// Model-based property test of the master: FsCheck generates sequences of agent, framework,
/// task and operator events, master failovers included (<see cref="MasterStep"/>), runs each on a
/// <see cref="DirectMaster"/> and checks <see cref="MasterInvariants"/> after every step and the
/// delivery of every status update at the end. A failing sequence is shrunk to a short one.
/// </summary>
public sealed class MasterModelTests
{
    private static readonly Gen<MasterStep> Step = Gen.Frequency(
        (3, Gen.Choose(1, 4).SelectMany(_ => Gen.Elements(512, 1024), (cpus, mem) => (MasterStep)new MasterStep.AddAgent(cpus, mem))),
        (1, Gen.Choose(0, 7).Select(i => (MasterStep)new MasterStep.AgentDisconnects(i))),
        (2, Gen.Choose(0, 7).Select(i => (MasterStep)new MasterStep.AgentReturns(i))),
        (2, Gen.Choose(0, 1).Select(i => (MasterStep)new MasterStep.AddFramework(i))),
        (1, Gen.Choose(0, 7).Select(i => (MasterStep)new MasterStep.FrameworkDisconnects(i))),
        (2, Gen.Choose(0, 7).Select(i => (MasterStep)new MasterStep.FrameworkReturns(i))),
        (5, Gen.Constant((MasterStep)new MasterStep.Allocate())),
        (6, Gen.Choose(0, 7).SelectMany(_ => Gen.Choose(0, 3), (fw, offer) => (fw, offer))
            .SelectMany(_ => Gen.Choose(1, 3), (p, tasks) => (p.fw, p.offer, tasks))
            .SelectMany(_ => Gen.Choose(1, 2), (p, cpus) => (MasterStep)new MasterStep.Accept(p.fw, p.offer, p.tasks, cpus))),
        (1, Gen.Choose(0, 7).Select(i => (MasterStep)new MasterStep.Decline(i))),
        (5, Gen.Choose(0, 7).SelectMany(_ => Gen.Choose(0, 7), (agent, task) => (agent, task))
            .SelectMany(_ => Gen.Elements(TaskState.TaskRunning, TaskState.TaskRunning, TaskState.TaskFinished, TaskState.TaskFailed),
                (p, state) => (MasterStep)new MasterStep.Update(p.agent, p.task, state))),
        (2, Gen.Choose(0, 7).Select(i => (MasterStep)new MasterStep.Acknowledge(i))),
        (1, Gen.Choose(0, 7).SelectMany(_ => Gen.Choose(0, 15), (fw, task) => (MasterStep)new MasterStep.Kill(fw, task))),
        (1, Gen.Choose(0, 1).SelectMany(_ => Gen.Choose(0, 4), (role, g) => (role, g))
            .SelectMany(_ => Gen.Choose(0, 6), (p, limit) => (MasterStep)new MasterStep.SetQuota(p.role, p.g, limit))),
        (2, Gen.Elements(1, 3, 6, 12, 25).Select(s => (MasterStep)new MasterStep.Advance(s))),
        (1, Gen.Constant((MasterStep)new MasterStep.Failover())));

    /// <summary>A cluster to start from (shrinkable like any other steps): a few agents and frameworks, an allocation.</summary>
    private static readonly Gen<List<MasterStep>> Prelude =
        Gen.Choose(1, 3).SelectMany(agents => Gen.Choose(1, 2), (agents, frameworks) =>
            Enumerable.Range(0, agents).Select(i => (MasterStep)new MasterStep.AddAgent(2 + i, 1024))
                .Concat(Enumerable.Range(0, frameworks).Select(i => (MasterStep)new MasterStep.AddFramework(i)))
                .Append(new MasterStep.Allocate())
                .ToList());

    private static readonly Arbitrary<MasterScenario> Scenarios =
        Arb.From(Prelude.SelectMany(_ => Step.ListOf(), (prelude, steps) => new MasterScenario([.. prelude, .. steps])), s => s.Shrink());

    [Fact]
    public void Every_sequence_of_events_keeps_the_masters_invariants() =>
        Prop.ForAll(Scenarios, scenario => { Task.Run(() => MasterModel.RunAsync(scenario)).GetAwaiter().GetResult(); })
            .Check(Config.QuickThrowOnFailure.WithMaxTest(200).WithEndSize(60));

    [Fact]
    public async Task The_generated_scenarios_launch_tasks_deliver_updates_and_fail_over()
    {
        var runs = new List<MasterModelRun>();
        foreach (var scenario in Scenarios.Generator.Sample(60, 40))
        {
            runs.Add(await MasterModel.RunAsync(scenario));
        }
        Assert.True(runs.Sum(r => r.TasksLaunched) > 50, $"{runs.Sum(r => r.TasksLaunched)} tasks launched in 40 scenarios");
        Assert.True(runs.Sum(r => r.UpdatesDelivered) > 50, $"{runs.Sum(r => r.UpdatesDelivered)} updates delivered in 40 scenarios");
        Assert.Contains(runs, r => r.Failovers > 0 && r.TasksLaunched > 0 && r.ReRegistrations > 0);
    }

    [Fact]
    public void The_invariants_catch_an_agent_whose_offers_and_tasks_exceed_its_total()
    {
        var state = new GetStateResponse();
        var agent = new AgentState { Info = new AgentInfo { Id = "a1", Hostname = "h1" }, Status = AgentStatus.AgentActive };
        agent.Total.Add(new Resource { Name = "cpus", Scalar = 2 });
        agent.Offered.Add(new Resource { Name = "cpus", Scalar = 2 });
        agent.Allocated.Add(new Resource { Name = "cpus", Scalar = 1 });
        state.Agents.Add(agent);
        Assert.Contains("exceed its total", MasterInvariants.Check(state, [], afterAllocation: false));
    }

    [Fact]
    public void The_invariants_catch_a_task_counted_on_no_agent()
    {
        var state = new GetStateResponse();
        state.Frameworks.Add(new FrameworkState { Info = new FrameworkInfo { Id = "f1" } });
        state.Tasks.Add(new TaskRecord { TaskId = "t1", FrameworkId = "f1", AgentId = "a-missing", State = TaskState.TaskRunning });
        Assert.Contains("which the master does not know", MasterInvariants.Check(state, [], afterAllocation: false));
    }

    [Fact]
    public void The_invariants_catch_a_role_short_of_its_guarantee_while_the_cluster_has_room()
    {
        var state = new GetStateResponse();
        var agent = new AgentState { Info = new AgentInfo { Id = "a1", Hostname = "h1" }, Status = AgentStatus.AgentActive };
        agent.Total.Add(new Resource { Name = "cpus", Scalar = 4 });
        agent.Available.Add(new Resource { Name = "cpus", Scalar = 4 });
        state.Agents.Add(agent);
        state.Frameworks.Add(new FrameworkState { Info = new FrameworkInfo { Id = "f1", Roles = { "web" } }, Connected = true });
        state.Roles.Add(new RoleState { Name = "web" });
        var quota = new QuotaInfo { Role = "web", Guarantees = { new Resource { Name = "cpus", Scalar = 2 } } };
        Assert.Contains("short of its guarantee", MasterInvariants.Check(state, [quota], afterAllocation: true));
    }
}
