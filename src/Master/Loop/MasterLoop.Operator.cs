using Sched.V1;
using Scheduler.Master.Registry;
using Scheduler.Master.State;
using Scheduler.Master.Validation;
using Scheduler.Protocol.Resources;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Loop;

/// <summary>The Operator service's reads and writes.</summary>
public sealed partial class MasterLoop
{
    public GetStateResponse GetState()
    {
        var response = new GetStateResponse { Master = Self };
        response.Agents.AddRange(_agents.All.Select(AgentState));
        response.Frameworks.AddRange(_frameworks.All.Select(FrameworkState));
        response.Tasks.AddRange(_frameworks.All.SelectMany(f => _tasks.LiveOf(f.Id)).Select(t => t.ToRecord()));
        response.CompletedTasks.AddRange(_frameworks.Removed.SelectMany(r => r.Completed).Concat(_frameworks.All.SelectMany(f => _tasks.CompletedOf(f.Id))).Select(t => t.ToRecord()));
        response.Roles.AddRange(GetRoles().Roles);
        return response;
    }

    public GetAgentsResponse GetAgents()
    {
        var response = new GetAgentsResponse();
        response.Agents.AddRange(_agents.All.Select(AgentState));
        return response;
    }

    public GetFrameworksResponse GetFrameworks()
    {
        var response = new GetFrameworksResponse();
        response.Frameworks.AddRange(_frameworks.All.Select(FrameworkState));
        return response;
    }

    public GetTasksResponse GetTasks(GetTasksRequest request)
    {
        var response = new GetTasksResponse();
        var wanted = request.FrameworkId;
        if (request.IncludeCompleted)
        {
            foreach (var removed in _frameworks.Removed.Where(r => wanted.Length == 0 || r.Framework.Id == wanted))
            {
                Add(removed.Completed);
            }
        }
        foreach (var fw in _frameworks.All.Where(f => wanted.Length == 0 || f.Id == wanted))
        {
            Add(_tasks.LiveOf(fw.Id));
            if (request.IncludeCompleted)
            {
                Add(_tasks.CompletedOf(fw.Id));
            }
        }
        return response;

        void Add(IEnumerable<TaskEntry> tasks) => response.Tasks.AddRange(tasks.Where(t =>
            (request.AgentId.Length == 0 || t.AgentId == request.AgentId)
            && (request.State == TaskState.Unspecified || t.State == request.State)
            && (request.TaskId.Length == 0 || t.TaskId == request.TaskId)).Select(t => t.ToRecord()));
    }

    public GetRolesResponse GetRoles()
    {
        var snapshot = _allocator.GetSnapshot();
        var response = new GetRolesResponse();
        var offered = _offers.All.GroupBy(o => o.Offer.Role, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => new ResourceBag(g.SelectMany(o => o.Offer.Resources)), StringComparer.Ordinal);
        var running = _frameworks.All.SelectMany(f => _tasks.LiveOf(f.Id)).GroupBy(t => t.Role, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (uint)g.Count(), StringComparer.Ordinal);
        foreach (var role in snapshot.Roles)
        {
            var state = new RoleState
            {
                Name = role.Role,
                Weight = role.Weight,
                Quota = role.Quota ?? _quotaBook.Quota(role.Role),
                DominantShare = role.DominantShare,
                RunningTasks = running.GetValueOrDefault(role.Role),
            };
            state.Allocated.AddRange(role.Allocated);
            state.Reserved.AddRange(role.Reserved);
            state.Frameworks.AddRange(role.Frameworks);
            if (offered.TryGetValue(role.Role, out var bag))
            {
                state.Offered.AddRange(bag.ToResources(role.Role));
            }
            response.Roles.Add(state);
        }
        return response;
    }

    public GetQuotaResponse GetQuota()
    {
        var response = new GetQuotaResponse();
        response.Quotas.AddRange(_quotaBook.Quotas);
        return response;
    }

    /// <summary>Validates and applies quotas; returns the registry write to await.</summary>
    public Task UpdateQuota(UpdateQuotaRequest request)
    {
        if (request.Quotas.Count == 0)
        {
            throw MasterErrors.InvalidArgument("quotas is empty: give at least one role's quota");
        }
        foreach (var q in request.Quotas)
        {
            if (QuotaBook.Problem(q) is { } bad)
            {
                throw MasterErrors.InvalidArgument(bad);
            }
            // The allocator's own rules (which resources can have a quota) are checked here too,
            // before anything changes: a refused request must leave no part of itself applied.
            if (_allocator.QuotaProblem(q) is { } refused)
            {
                throw MasterErrors.InvalidArgument(refused);
            }
        }
        if (!request.Force)
        {
            RefuseLimitsBelowHeld(request.Quotas);
            var shortfall = _agents.ActiveTotal().FindShortfall(_quotaBook.GuaranteesWith(request.Quotas));
            if (shortfall is not null)
            {
                throw MasterErrors.FailedPrecondition($"the sum of quota guarantees exceeds the cluster's resources ({shortfall.Replace("offered", "in the cluster", StringComparison.Ordinal)}); lower the guarantees or pass force");
            }
        }
        var writes = new List<RegistryWrite>();
        foreach (var q in request.Quotas)
        {
            writes.Add(_quotaBook.Set(q));
            _allocator.UpdateQuota(q);
        }
        EnforceQuotaLimits(request.Quotas);
        return _registry.Enqueue([.. writes]);
    }

    /// <summary>Validates and applies weights; returns the registry write to await.</summary>
    public Task UpdateWeights(UpdateWeightsRequest request)
    {
        if (request.Weights.Count == 0)
        {
            throw MasterErrors.InvalidArgument("weights is empty: give at least one role's weight");
        }
        foreach (var w in request.Weights)
        {
            if (RoleName.Validate(w.Role) is { } bad)
            {
                throw MasterErrors.InvalidArgument($"weight role: {bad}");
            }
            if (WeightChecks.Problem(w) is { } badWeight)
            {
                throw MasterErrors.InvalidArgument(badWeight);
            }
        }
        var writes = request.Weights.Select(_quotaBook.SetWeight).ToArray();
        _allocator.UpdateWeights([.. request.Weights]);
        return _registry.Enqueue(writes);
    }

    public DrainAgentResponse DrainAgent(DrainAgentRequest request)
    {
        var agent = OperatorAgent(request.AgentId);
        agent.Draining = true;
        if (agent.Status == AgentStatus.AgentActive)
        {
            agent.Status = AgentStatus.AgentDraining;
        }
        foreach (var offer in _offers.ForAgent(agent.Id))
        {
            RescindOffer(offer, $"rescinded: agent {agent.Id} is draining");
        }
        if (agent.InAllocator)
        {
            _allocator.UpdateAgent(Spec(agent));
        }
        if (request.KillTasks)
        {
            foreach (var task in _tasks.OnAgent(agent.Id))
            {
                agent.Link?.Outbox.Send(new MasterMessage
                {
                    Kill = new MasterMessage.Types.KillTask { FrameworkId = task.FrameworkId, TaskId = task.TaskId, KillPolicy = task.KillPolicy, Reason = TaskStatus.Types.Reason.AgentDraining },
                });
            }
        }
        Persist(RegistryWrite.Put(RegistryRecords.AgentKey(agent.Id), ToRecord(agent)));
        return new DrainAgentResponse();
    }

    /// <summary>An operator kills a live task by id (the framework needs no stream); the terminal
    /// update (TASK_KILLED, REASON_KILLED_BY_OPERATOR) reaches the framework as usual.</summary>
    public KillTaskResponse KillTask(KillTaskRequest request) => KillTask(request, null);

    /// <summary>As <see cref="KillTask(KillTaskRequest)"/>, for <paramref name="caller"/> (null:
    /// unchecked): the task's framework's owner, a superuser, or kill_task on the owner.</summary>
    public KillTaskResponse KillTask(KillTaskRequest request, Scheduler.Security.Caller? caller)
    {
        if (string.IsNullOrEmpty(request.TaskId))
        {
            throw MasterErrors.InvalidArgument("task_id is required");
        }
        var matches = _frameworks.All
            .Where(f => request.FrameworkId.Length == 0 || f.Id == request.FrameworkId)
            .Select(f => _tasks.Live(f.Id, request.TaskId))
            .OfType<TaskEntry>()
            .ToList();
        if (matches.Count == 0)
        {
            var scope = request.FrameworkId.Length == 0 ? "" : $" of framework '{request.FrameworkId}'";
            throw MasterErrors.NotFound($"no live task '{request.TaskId}'{scope}; see 'schedctl tasks' (ended tasks cannot be killed)");
        }
        if (matches.Count > 1)
        {
            throw MasterErrors.FailedPrecondition(
                $"task id '{request.TaskId}' is live in {matches.Count} frameworks ({string.Join(", ", matches.Select(t => t.FrameworkId))}); set framework_id");
        }
        var task = matches[0];
        if (caller is not null && _frameworks.TryGet(task.FrameworkId, out var owner))
        {
            Security.DemandOnOwned(caller, Scheduler.Security.AclAction.KillTask, owner.Info.Principal, $"task '{task.TaskId}' of framework {task.FrameworkId}");
        }
        SendToAgent(task.AgentId, new MasterMessage
        {
            Kill = new MasterMessage.Types.KillTask
            {
                FrameworkId = task.FrameworkId,
                TaskId = task.TaskId,
                KillPolicy = request.KillPolicy ?? task.KillPolicy,
                Reason = TaskStatus.Types.Reason.KilledByOperator,
            },
        });
        return new KillTaskResponse { FrameworkId = task.FrameworkId, AgentId = task.AgentId };
    }

    public ReactivateAgentResponse ReactivateAgent(ReactivateAgentRequest request)
    {
        var agent = OperatorAgent(request.AgentId);
        agent.Draining = false;
        if (agent.Status is AgentStatus.AgentDraining or AgentStatus.AgentDrained)
        {
            agent.Status = AgentStatus.AgentActive;
        }
        if (agent.InAllocator)
        {
            _allocator.UpdateAgent(Spec(agent));
        }
        Persist(RegistryWrite.Put(RegistryRecords.AgentKey(agent.Id), ToRecord(agent)));
        return new ReactivateAgentResponse();
    }

    /// <summary>Opens an operator event stream; its first event is the state snapshot.</summary>
    public Outbox<OperatorEvent> SubscribeOperator()
    {
        var outbox = new Outbox<OperatorEvent>();
        foreach (var e in SnapshotEvents(GetState()))
        {
            outbox.Send(e);
        }
        _operatorSubscribers.Add(outbox);
        return outbox;
    }

    public void UnsubscribeOperator(Outbox<OperatorEvent> outbox)
    {
        outbox.Close();
        _operatorSubscribers.Remove(outbox);
    }

    private AgentEntry OperatorAgent(string agentId)
    {
        if (string.IsNullOrEmpty(agentId))
        {
            throw MasterErrors.InvalidArgument("agent_id is required");
        }
        return _agents.TryGet(agentId, out var agent) ? agent : throw MasterErrors.NotFound($"agent '{agentId}' is not known; see GetAgents");
    }

    private AgentState AgentState(AgentEntry agent)
    {
        var offered = new ResourceBag(_offers.ForAgent(agent.Id).SelectMany(o => o.Offer.Resources));
        var tasks = _tasks.OnAgent(agent.Id);
        var allocated = new ResourceBag(tasks.SelectMany(t => t.Resources));
        var total = agent.Resources.TotalBag();
        var available = agent.Resources.Unused();
        var state = new AgentState
        {
            Info = agent.Info,
            Status = agent.Draining && agent.Status == AgentStatus.AgentDraining && tasks.Count == 0 ? AgentStatus.AgentDrained : agent.Status,
            RegisteredTime = agent.RegisteredTime,
            LastHeartbeatTime = agent.LastHeartbeat is { UtcTicks: > 0 } beat ? beat.ToUnixTimeMilliseconds() / 1000.0 : 0,
            RunningTasks = (uint)tasks.Count(t => t.State == TaskState.TaskRunning),
            Usage = agent.Usage,
        };
        state.Total.AddRange(total.ToResources());
        state.Offered.AddRange(offered.ToResources());
        state.Allocated.AddRange(allocated.ToResources());
        state.Available.AddRange(available.ToResources());
        return state;
    }

    private FrameworkState FrameworkState(FrameworkEntry fw)
    {
        var tasks = _tasks.LiveOf(fw.Id);
        var (finished, failed) = _tasks.Counts(fw.Id);
        var state = new FrameworkState
        {
            Info = fw.Info,
            Connected = fw.Connected,
            Active = fw.Connected,
            RegisteredTime = fw.RegisteredTime,
            FailoverDeadline = fw.FailoverDeadline is { } d ? d.ToUnixTimeMilliseconds() / 1000.0 : 0,
            RunningTasks = (uint)tasks.Count(t => t.State == TaskState.TaskRunning),
            FinishedTasks = finished,
            FailedTasks = failed,
        };
        state.Allocated.AddRange(new ResourceBag(tasks.SelectMany(t => t.Resources)).ToResources());
        state.Offered.AddRange(new ResourceBag(_offers.ForFramework(fw.Id).SelectMany(o => o.Offer.Resources)).ToResources());
        state.SuppressedRoles.AddRange(fw.SuppressedRoles.Order(StringComparer.Ordinal));
        return state;
    }

    /// <summary>The principal of every framework the master knows, live or recently removed, by id.</summary>
    public Dictionary<string, string> FrameworkPrincipals() => _frameworks.Principals();
}
