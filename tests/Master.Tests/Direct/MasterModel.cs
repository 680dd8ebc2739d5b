using Grpc.Core;
using Sched.V1;
using Scheduler.Protocol.Tasks;

namespace Scheduler.Master.Tests.Direct;

/// <summary>
/// Runs a <see cref="MasterScenario"/> against a <see cref="DirectMaster"/> and checks the
/// master's invariants (<see cref="MasterInvariants"/>) after every step; at the end, brings
/// every participant back and checks that each status update an agent sent reached its framework,
/// directly or through reconciliation. Throws with the step and the broken invariant.
/// </summary>
public sealed record MasterModelRun(int TasksLaunched, int UpdatesDelivered, int Failovers, int ReRegistrations);

public sealed class MasterModel : IAsyncDisposable
{
    private readonly DirectMaster _master;
    private readonly List<DirectAgent> _agents = [];
    private readonly List<DirectFramework> _frameworks = [];
    private readonly HashSet<DirectFramework> _removed = [];
    private readonly List<(DirectFramework Framework, string TaskId)> _launched = [];
    private int _nextTask;

    private MasterModel(DirectMaster master) => _master = master;

    /// <summary>Failover timeout of the model's frameworks, short enough for Advance steps to reach it.</summary>
    public const double FailoverTimeoutSeconds = 20;

    /// <summary>Runs the scenario; returns what it did (to check that generated scenarios do real work).</summary>
    public static async Task<MasterModelRun> RunAsync(MasterScenario scenario)
    {
        await using var model = new MasterModel(await DirectMaster.StartAsync(o =>
        {
            o.HeartbeatInterval = TimeSpan.FromSeconds(1);
            o.AgentTimeout = TimeSpan.FromSeconds(5);
            o.AgentReregisterTimeout = TimeSpan.FromSeconds(10);
        }));
        for (var i = 0; i < scenario.Steps.Count; i++)
        {
            var step = scenario.Steps[i];
            await model.ApplyAsync(step);
            await model.PumpAsync();
            if (await MasterInvariants.CheckAsync(model._master, afterAllocation: step is MasterStep.Allocate) is { } broken)
            {
                throw new InvalidOperationException($"after step {i + 1} ({step}): {broken}");
            }
        }
        if (await model.QuiesceAndCheckDeliveryAsync() is { } undelivered)
        {
            throw new InvalidOperationException($"at the end: {undelivered}");
        }
        return new MasterModelRun(
            TasksLaunched: model._agents.Sum(a => a.Received.Where(m => m.MessageCase == MasterMessage.MessageOneofCase.Launch).Sum(m => m.Launch.Tasks.Count)),
            UpdatesDelivered: model._frameworks.Sum(f => f.Events.Count(e => e.EventCase == Event.EventOneofCase.Update && e.Update.Status.Source == Sched.V1.TaskStatus.Types.Source.Agent)),
            Failovers: scenario.Steps.Count(s => s is MasterStep.Failover),
            ReRegistrations: model._agents.Sum(a => a.Received.Count(m => m.MessageCase == MasterMessage.MessageOneofCase.Registered)) - model._agents.Count);
    }

    public ValueTask DisposeAsync() => _master.DisposeAsync();

    private static T? Pick<T>(List<T> items, int index) where T : class => items.Count == 0 ? null : items[index % items.Count];

    private async Task ApplyAsync(MasterStep step)
    {
        switch (step)
        {
            case MasterStep.AddAgent a:
                var agent = new DirectAgent(_master, [new Resource { Name = "cpus", Scalar = a.Cpus }, new Resource { Name = "mem", Scalar = a.Mem }], $"host{_agents.Count}");
                _agents.Add(agent);
                await agent.RegisterAsync();
                break;
            case MasterStep.AgentDisconnects d when Pick(_agents, d.Agent) is { Connected: true } gone:
                await gone.DisconnectAsync();
                break;
            case MasterStep.AgentReturns r when Pick(_agents, r.Agent) is { Connected: false } back:
                if (await back.RegisterAsync() is not null)
                {
                    await back.ResendAsync();
                }
                break;
            case MasterStep.AddFramework f:
                var fw = DirectFramework.For(_master, MasterStep.Roles[f.Role % MasterStep.Roles.Length], FailoverTimeoutSeconds, $"fw{_frameworks.Count}");
                _frameworks.Add(fw);
                await fw.SubscribeAsync();
                break;
            case MasterStep.FrameworkDisconnects d when Pick(_frameworks, d.Framework) is { Connected: true } leaving:
                await leaving.DisconnectAsync();
                break;
            case MasterStep.FrameworkReturns r when Pick(_frameworks, r.Framework) is { Connected: false } returning && !_removed.Contains(returning):
                await ResubscribeAsync(returning);
                break;
            case MasterStep.Allocate:
                await _master.AllocateAsync();
                break;
            case MasterStep.Accept a when Pick(_frameworks.Where(f => f.Connected && f.Offers.Count > 0).ToList(), a.Framework) is { } accepting:
                var offer = accepting.Offers.Values.OrderBy(o => o.Id, StringComparer.Ordinal).ElementAt(a.Offer % accepting.Offers.Count);
                var tasks = Enumerable.Range(0, a.Tasks).Select(_ => DirectFramework.Task($"t{++_nextTask}", offer,
                    [new Resource { Name = "cpus", Scalar = a.Cpus }, new Resource { Name = "mem", Scalar = 64 }])).ToList();
                _launched.AddRange(tasks.Select(t => (accepting, t.TaskId)));
                await Call(() => accepting.AcceptAsync([offer.Id], tasks));
                break;
            case MasterStep.Decline d when Pick(_frameworks.Where(f => f.Connected && f.Offers.Count > 0).ToList(), d.Framework) is { } declining:
                await Call(() => declining.DeclineAsync([.. declining.Offers.Keys], refuseSeconds: 0));
                break;
            case MasterStep.Update u when Pick(_agents.Where(a => a.Connected && a.Tasks.Values.Any(t => !TaskLifecycle.IsTerminal(t.State))).ToList(), u.Agent) is { } reporting:
                var live = reporting.Tasks.Values.Where(t => !TaskLifecycle.IsTerminal(t.State)).OrderBy(t => t.TaskId, StringComparer.Ordinal).ToList();
                if (Pick(live, u.Task) is { } task)
                {
                    await reporting.SendStatusAsync(task.FrameworkId, task.TaskId, u.State);
                }
                break;
            case MasterStep.Acknowledge a when Pick(_frameworks.Where(f => f.Connected && f.ToAcknowledge.Count > 0).ToList(), a.Framework) is { } acking:
                await Call(acking.AcknowledgeAllAsync);
                break;
            case MasterStep.Kill k when Pick(_frameworks.Where(f => f.Connected && _launched.Any(l => l.Framework == f)).ToList(), k.Framework) is { } killing:
                var mine = _launched.Where(l => l.Framework == killing).ToList();
                if (mine.Count > 0)
                {
                    await Call(() => killing.KillAsync(mine[k.Task % mine.Count].TaskId));
                }
                break;
            case MasterStep.SetQuota q:
                var quota = new QuotaInfo { Role = MasterStep.Roles[q.Role % MasterStep.Roles.Length] };
                if (q.Guarantee > 0)
                {
                    quota.Guarantees.Add(new Resource { Name = "cpus", Scalar = q.Guarantee });
                }
                if (q.Limit > 0)
                {
                    quota.Limits.Add(new Resource { Name = "cpus", Scalar = Math.Max(q.Limit, q.Guarantee) });
                }
                await Call(async () => await await _master.On(l => l.UpdateQuota(new UpdateQuotaRequest { Quotas = { quota } })));
                break;
            case MasterStep.Advance a:
                await _master.AdvanceAsync(TimeSpan.FromSeconds(a.Seconds));
                break;
            case MasterStep.Failover:
                await _master.FailoverAsync();
                break;
            default:
                break; // nothing to act on
        }
    }

    /// <summary>A call the master may refuse (a stale stream, an over-committed quota): refusals change nothing.</summary>
    private static async Task Call(Func<Task> call)
    {
        try
        {
            await call();
        }
        catch (RpcException)
        {
        }
    }

    private async Task ResubscribeAsync(DirectFramework fw)
    {
        try
        {
            await fw.SubscribeAsync();
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            _removed.Add(fw); // its failover timeout expired
        }
    }

    /// <summary>Lets agents act on what the master sent them (launches, kills, acknowledgements)
    /// until nothing new arrives; frameworks read their events.</summary>
    private async Task PumpAsync()
    {
        for (var round = 0; round < 20; round++)
        {
            var before = _agents.Sum(a => a.Received.Count);
            foreach (var agent in _agents)
            {
                await agent.ProcessAsync();
            }
            foreach (var fw in _frameworks)
            {
                fw.Drain();
                if (fw.Events.Any(e => e.EventCase == Event.EventOneofCase.Error))
                {
                    _removed.Add(fw);
                }
            }
            await _master.SettleAsync();
            if (_agents.Sum(a => a.Received.Count) == before)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Every agent and framework comes back, agents re-send what is unacknowledged, frameworks
    /// reconcile; then the latest state each agent reported for a task of a framework that was
    /// not removed must be the framework's latest view of that task.
    /// </summary>
    private async Task<string?> QuiesceAndCheckDeliveryAsync()
    {
        foreach (var agent in _agents.Where(a => !a.Connected))
        {
            await agent.RegisterAsync();
        }
        foreach (var fw in _frameworks.Where(f => !f.Connected && !_removed.Contains(f)))
        {
            await ResubscribeAsync(fw);
        }
        await PumpAsync();
        // Updates of one task go out one at a time, each after the previous one is acknowledged:
        // acknowledge and re-send until every queue drained (or stopped moving).
        for (var round = 0; round < 50 && _agents.Any(a => a.Connected && a.Unacked.Count > 0); round++)
        {
            foreach (var fw in _frameworks.Where(f => f.Connected))
            {
                await Call(fw.AcknowledgeAllAsync);
            }
            await PumpAsync();
            foreach (var agent in _agents.Where(a => a.Connected))
            {
                await agent.ResendAsync();
            }
            await PumpAsync();
        }
        foreach (var fw in _frameworks.Where(f => f.Connected && !_removed.Contains(f)))
        {
            await Call(fw.ReconcileAsync);
        }
        await PumpAsync();
        foreach (var agent in _agents.Where(a => a.Connected))
        {
            foreach (var ((fwId, taskId), state) in agent.LastSent)
            {
                var fw = _frameworks.FirstOrDefault(f => f.Id == fwId);
                if (fw is null || _removed.Contains(fw) || !fw.Connected)
                {
                    continue;
                }
                if (!fw.Latest.TryGetValue(taskId, out var seen))
                {
                    return $"agent {agent.Info.Hostname} reported {taskId} {state}, but framework {fw.Info.Name} never heard of the task";
                }
                if (seen.State != state && !ForgottenAfterDelivery(agent, fw, (fwId, taskId), state, seen))
                {
                    return $"agent {agent.Info.Hostname} last reported {taskId} {state}, but framework {fw.Info.Name} last heard {seen.State} ({seen.Message})";
                }
            }
        }
        return null;
    }

    /// <summary>
    /// The master keeps no tasks in its registry (they are rebuilt from re-registering agents), and
    /// an agent forgets a task once its terminal update is acknowledged: after a failover the master
    /// truthfully answers a kill or a reconciliation of such a task with TASK_UNKNOWN. That answer
    /// is a later view of a delivered update, not a lost one, when the framework heard the agent's
    /// terminal state and the agent no longer holds the task.
    /// </summary>
    private static bool ForgottenAfterDelivery(DirectAgent agent, DirectFramework fw, (string Framework, string Task) key, TaskState reported, Sched.V1.TaskStatus seen) =>
        seen.State == TaskState.TaskUnknown && TaskLifecycle.IsTerminal(reported)
        && !agent.Tasks.ContainsKey(key) && !agent.Unacked.ContainsKey(key)
        && fw.Events.Any(e => e.EventCase == Event.EventOneofCase.Update && e.Update.Status.TaskId == key.Task && e.Update.Status.State == reported);
}
