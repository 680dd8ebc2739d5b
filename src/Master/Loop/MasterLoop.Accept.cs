using Sched.V1;
using Scheduler.Master.Registry;
using Scheduler.Master.State;
using Scheduler.Master.Validation;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Loop;

/// <summary>
/// What happens on Accept, start to end: the offers are checked (<see cref="CheckOffers"/>, the
/// <see cref="OfferBook"/> and <see cref="AgentBook"/>), the operations are planned in order
/// against what the offers hold (<see cref="Plan"/>: each task by <see cref="LaunchChecks"/>, each
/// RESERVE/UNRESERVE/CREATE/DESTROY by <see cref="ResourceOperations"/>; both are pure and never
/// call back), and only then is the plan committed: offers retired, conversions applied, tasks
/// recorded in the <see cref="TaskBook"/> and sent to the agent's link in one LaunchTasks message,
/// refusals answered, leftovers returned to the allocator with the call's filter. The task's
/// updates then arrive in <c>OnStatusUpdate</c> (MasterLoop.Tasks.cs).
/// </summary>
public sealed partial class MasterLoop
{
    /// <summary>
    /// Applies an Accept's operations, in order, to the union of its offers. Returns a task that
    /// completes once the registry holds the changes the operations made (at once when only tasks
    /// were launched). Invalid RESERVE/UNRESERVE/CREATE/DESTROY operations refuse the whole call
    /// with INVALID_ARGUMENT naming the operation before anything changes (the offers stay
    /// outstanding); invalid tasks get TASK_ERROR and the rest of the call goes on.
    /// </summary>
    public Task Accept(AcceptRequest request)
    {
        var fw = Caller(request.FrameworkId, request.StreamId);
        if (request.OfferIds.Count == 0)
        {
            throw MasterErrors.InvalidArgument("offer_ids is empty: list the offers to use (or call Decline to return them)");
        }
        for (var i = 0; i < request.Operations.Count; i++)
        {
            if (request.Operations[i].OperationCase == Operation.OperationOneofCase.None)
            {
                throw MasterErrors.InvalidArgument($"operation #{i} is empty: set one of launch, reserve, unreserve, create or destroy");
            }
        }
        var tasks = request.Operations.Where(o => o.OperationCase == Operation.OperationOneofCase.Launch).SelectMany(o => o.Launch.Tasks).ToList();
        var now = NowSeconds;

        var (offers, agent, offerProblem) = CheckOffers(fw, request.OfferIds);
        if (offerProblem is not null)
        {
            // Usable offers in a refused call go back to the allocator without a filter.
            foreach (var offer in offers)
            {
                _offers.Retire(offer.Offer.Id, "it was part of an Accept refused for invalid offers");
                Recover(fw.Id, offer.Offer.AgentId, offer.Offer.Resources, null);
            }
            foreach (var task in tasks)
            {
                Refuse(fw, task, offers.FirstOrDefault()?.Offer.AgentId ?? task.AgentId, TaskState.TaskDropped, TaskStatus.Types.Reason.InvalidOffers, offerProblem, now);
            }
            if (tasks.Count == 0 && request.Operations.Count > 0)
            {
                throw MasterErrors.FailedPrecondition(offerProblem);
            }
            return Task.CompletedTask;
        }

        var agentId = agent!.Id;
        // What the offers hold, per allocation role.
        var remaining = new Dictionary<string, ResourceBag>(StringComparer.Ordinal);
        foreach (var offer in offers)
        {
            if (!remaining.TryGetValue(offer.Offer.Role, out var bag))
            {
                remaining[offer.Offer.Role] = bag = new ResourceBag();
            }
            bag.Add(offer.Offer.Resources);
        }

        // Plan first (throws before any change), then commit.
        var steps = Plan(fw, agent, _tasks, request.Operations, remaining, Security);
        foreach (var offer in offers)
        {
            _offers.Retire(offer.Offer.Id, "it was already used by an earlier Accept");
        }
        var durable = Task.CompletedTask;
        var launch = new MasterMessage.Types.LaunchTasks { Framework = fw.Info };
        var applied = new MasterMessage.Types.ApplyOperations();
        var launchedUnderLimits = new Dictionary<string, Dictionary<string, double>>(StringComparer.Ordinal);
        foreach (var step in steps)
        {
            if (step.Conversion is { } conversion)
            {
                ApplyConversion(fw, agent, conversion);
                applied.Operations.Add(conversion.Operation);
                continue;
            }
            var task = step.Task!;
            if (step.Problem is not null)
            {
                Refuse(fw, task, agentId, TaskState.TaskError, step.Reason, step.Problem, now);
                continue;
            }
            if (QuotaLimitProblem(step.Role!, task, launchedUnderLimits) is { } overLimit)
            {
                // The limit moved below an offer still in flight: the task is dropped and its
                // share of the offers goes back with the rest.
                remaining[step.Role!].Add(task.Resources);
                Refuse(fw, task, agentId, TaskState.TaskDropped, TaskStatus.Types.Reason.ResourcesExceeded, overLimit, now);
                continue;
            }
            var (secrets, secretProblem) = _secrets.TaskProblem(fw.Info.Roles, task, step.Role!) is { } badSecret ? (null, badSecret) : _secrets.Open(Security.Secrets, task, step.Role!);
            if (secretProblem is not null)
            {
                remaining[step.Role!].Add(task.Resources);
                Refuse(fw, task, agentId, TaskState.TaskError, TaskStatus.Types.Reason.TaskInvalid, secretProblem, now);
                continue;
            }
            if (secrets is not null)
            {
                launch.Secrets[task.TaskId] = secrets;
            }
            launch.Tasks.Add(Track(fw, agent, task, step.Role!));
        }
        if (applied.Operations.Count > 0)
        {
            applied.CheckpointedResources.AddRange(agent.Resources.Checkpointed);
            // The agent learns of the operations before any launch that uses their results.
            agent.Link?.Outbox.Send(new MasterMessage { ApplyOperations = applied });
            durable = PersistDurably(RegistryWrite.Put(RegistryRecords.AgentKey(agent.Id), ToRecord(agent)));
        }
        if (launch.Tasks.Count > 0)
        {
            agent.Link?.Outbox.Send(new MasterMessage { Launch = launch });
            _metrics.TasksLaunched(launch.Tasks.Count);
        }
        var refuse = RefuseFor(request.Filters);
        foreach (var (role, bag) in remaining)
        {
            Recover(fw.Id, agentId, bag.ToResources(role), refuse);
        }
        return durable;
    }

    /// <summary>
    /// Validates every operation in order against <paramref name="remaining"/> (updated as it goes)
    /// without changing master state. Throws INVALID_ARGUMENT naming the first bad operation.
    /// </summary>
    private static List<TaskStep> Plan(FrameworkEntry fw, AgentEntry agent, TaskBook tasks, IList<Operation> operations, Dictionary<string, ResourceBag> remaining, Security.MasterSecurity security)
    {
        var steps = new List<TaskStep>();
        var inCall = new HashSet<string>(StringComparer.Ordinal);
        // Volumes of this call: created (id → role) and used by tasks planned so far (id → task).
        var created = new HashSet<(string Role, string Id)>();
        var usedByPlanned = new Dictionary<(string Role, string Id), string>();
        for (var i = 0; i < operations.Count; i++)
        {
            var op = operations[i];
            if (op.OperationCase == Operation.OperationOneofCase.Launch)
            {
                foreach (var task in op.Launch.Tasks)
                {
                    var step = LaunchChecks.PlanTask(fw, tasks, task, agent.Id, inCall, remaining, security);
                    steps.Add(step);
                    if (step.Problem is null)
                    {
                        foreach (var v in task.Resources.Where(r => r.Disk?.Persistence is { Id.Length: > 0 }))
                        {
                            usedByPlanned[(v.Reservation?.Role ?? "", v.Disk.Persistence.Id)] = task.TaskId;
                        }
                    }
                }
                continue;
            }
            var label = $"operation #{i} ({op.OperationCase.ToString().ToUpperInvariant()})";
            IList<Resource> resources = op.OperationCase switch
            {
                Operation.OperationOneofCase.Reserve => [.. op.Reserve.Resources.Select(ResourceOperations.WithDynamicDefault)],
                Operation.OperationOneofCase.Unreserve => op.Unreserve.Resources,
                Operation.OperationOneofCase.Create => op.Create.Volumes,
                _ => op.Destroy.Volumes,
            };
            if (resources.Count == 0)
            {
                throw MasterErrors.InvalidArgument($"{label} lists no resources; give the resources to {op.OperationCase.ToString().ToLowerInvariant()}");
            }
            if (ResourceChecks.Validate(resources) is { } bad)
            {
                throw MasterErrors.InvalidArgument($"{label}: {bad}");
            }
            if (op.OperationCase == Operation.OperationOneofCase.Reserve)
            {
                var owner = new Scheduler.Security.Caller(fw.Info.Principal, Scheduler.Security.CallerKind.Token);
                foreach (var role in resources.Select(r => r.Reservation?.Role ?? "").Where(r => r.Length > 0).Distinct(StringComparer.Ordinal))
                {
                    security.Demand(owner, Scheduler.Security.AclAction.Reserve, role);
                }
            }
            else if (op.OperationCase == Operation.OperationOneofCase.Unreserve)
            {
                var owner = new Scheduler.Security.Caller(fw.Info.Principal, Scheduler.Security.CallerKind.Token);
                foreach (var by in resources.Select(r => r.Reservation?.Principal ?? "").Distinct(StringComparer.Ordinal))
                {
                    security.DemandOnOwned(owner, Scheduler.Security.AclAction.Unreserve, by, "reservations");
                }
            }
            var byRole = new Dictionary<string, (List<Resource> From, List<Resource> To)>(StringComparer.Ordinal);
            foreach (var r in resources)
            {
                var role = ResourceOperations.OperationRole(r, remaining, label);
                var (from, to) = op.OperationCase switch
                {
                    Operation.OperationOneofCase.Reserve => ResourceOperations.PlanReserve(fw, r, role, label),
                    Operation.OperationOneofCase.Unreserve => ResourceOperations.PlanUnreserve(r, label),
                    Operation.OperationOneofCase.Create => ResourceOperations.PlanCreate(fw, agent, r, created, label),
                    _ => ResourceOperations.PlanDestroy(agent, tasks.OnAgent(agent.Id), r, usedByPlanned, created, label),
                };
                if (remaining[role].FindShortfall([from]) is { } shortfall)
                {
                    throw MasterErrors.InvalidArgument($"{label}: {ResourceOperations.Describe(from)} is not in the accepted offers ({shortfall}); "
                        + "operate only on resources the offers hold, minus earlier operations and tasks of this call");
                }
                remaining[role].Subtract([from]);
                remaining[role].Add([to]);
                if (!byRole.TryGetValue(role, out var lists))
                {
                    byRole[role] = lists = ([], []);
                }
                lists.From.Add(from);
                lists.To.Add(to);
            }
            foreach (var (role, (from, to)) in byRole)
            {
                steps.Add(new TaskStep(null, null, null, TaskStatus.Types.Reason.Unspecified) { Conversion = new Conversion(role, from, to, ResourceOperations.AgentOperation(op.OperationCase, from, to)) });
            }
        }
        return steps;
    }

    /// <summary>Looks up the offers of an Accept (<see cref="OfferBook.Usable"/>) and checks that
    /// their agent is connected; returns the usable offers, their agent when it is connected, and,
    /// if anything is not usable, what is wrong.</summary>
    private (List<OutstandingOffer> Offers, AgentEntry? Agent, string? Problem) CheckOffers(FrameworkEntry fw, IEnumerable<string> ids)
    {
        var (offers, problem) = _offers.Usable(fw.Id, ids);
        if (problem is not null)
        {
            return (offers, null, problem);
        }
        var agentId = offers[0].Offer.AgentId;
        if (!_agents.TryGet(agentId, out var agent) || agent.Link is null || agent.Status is not (AgentStatus.AgentActive or AgentStatus.AgentDraining))
        {
            return (offers, null, $"agent {agentId} of the offers is not connected; wait for new offers");
        }
        return (offers, agent, null);
    }

    /// <summary>Records a launched task (STAGING) on its framework and agent; returns the info to
    /// send. The info (the parsed request, the loop's own) and the entry share its resources as
    /// pooled objects carrying the allocation role (see MasterLoop.TaskMemory.cs).</summary>
    private TaskInfo Track(FrameworkEntry fw, AgentEntry agent, TaskInfo task, string role)
    {
        task.AgentId = agent.Id; // equal (checked), now the agent's own string
        // role is the offer's, which is the allocator's one string per role.
        var entry = TaskEntry.Launched(task, fw.Id, agent.Id, role, _sharedResources.InternAll(task.Resources, role), TaskState.TaskStaging);
        _tasks.Add(entry);
        if (_operatorSubscribers.Count > 0)
        {
            Emit(new OperatorEvent { TaskAdded = new OperatorEvent.Types.TaskAdded { Task = entry.ToRecord() } });
        }
        return task;
    }

    /// <summary>Answers a task that will not be launched with a master-generated terminal update.</summary>
    private void Refuse(FrameworkEntry fw, TaskInfo task, string agentId, TaskState state, TaskStatus.Types.Reason reason, string message, double now)
    {
        _metrics.TaskInvalid(state);
        if (task.TaskId.Length > 0 && _tasks.Live(fw.Id, task.TaskId) is { } live)
        {
            // The id names a live task (launched earlier, perhaps by an Accept a failed master
            // took and this call repeats): a terminal state would tell the framework that task
            // ended, and it would launch it again beside the running one. The refusal carries the
            // live task's own state instead.
            var current = Reconciled(fw, live, now);
            current.Reason = TaskStatus.Types.Reason.DuplicateTaskId;
            current.Message = $"launch refused ({message}): task id '{task.TaskId}' belongs to a live task of this framework, whose last known state this is";
            fw.Subscription?.Outbox.Send(new Event { Update = new Event.Types.Update { Status = current } });
            return;
        }
        var record = TaskEntry.Launched(task, fw.Id, agentId, "", [.. task.Resources], state);
        var status = record.MasterStatus(state, reason, message, now);
        record.SetStatus(status);
        if (task.TaskId.Length > 0)
        {
            _tasks.AddCompleted(record);
        }
        fw.Subscription?.Outbox.Send(new Event { Update = new Event.Types.Update { Status = status } });
    }
}
