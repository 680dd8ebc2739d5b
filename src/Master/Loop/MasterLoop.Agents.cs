using Sched.V1;
using Scheduler.Protocol.Tasks;
using Scheduler.Allocation;
using Scheduler.Master.Registry;
using Scheduler.Master.State;
using Scheduler.Master.Telemetry;
using Scheduler.Master.Validation;
using Grpc.Core;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Loop;

/// <summary>AgentLink: registration, heartbeats, usage, timeouts.</summary>
public sealed partial class MasterLoop
{
    /// <summary>Starts tracking a new AgentLink.Connect stream.</summary>
    public AgentLinkSession OpenAgentLink(string principal = "") => new(Interlocked.Increment(ref _nextSessionId)) { Principal = principal };

    /// <summary>The heartbeat interval agents are told now (any thread); see <see cref="AgentLiveness.HeartbeatInterval"/>.</summary>
    public TimeSpan CurrentHeartbeatInterval => _liveness.HeartbeatInterval;

    /// <summary>
    /// Entry point for every message read from an AgentLink stream (any thread). Liveness is
    /// recorded and heartbeats of a registered stream are answered here, off the loop
    /// (<see cref="AgentLiveness"/>); everything else is queued to the loop in arrival order.
    /// </summary>
    public void Receive(AgentLinkSession session, AgentMessage message)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(message);
        var heartbeat = message.MessageCase == AgentMessage.MessageOneofCase.Heartbeat;
        session.Heard(Now, heartbeat);
        if (heartbeat && session.AgentId is not null)
        {
            _liveness.Ping(session, message.Heartbeat.Sequence);
            return;
        }
        Post(l => l.OnAgentMessage(session, message));
    }

    /// <summary>One message from an agent's stream.</summary>
    public void OnAgentMessage(AgentLinkSession session, AgentMessage message)
    {
        if (session.Outbox.IsClosed)
        {
            return;
        }
        if (message.MessageCase == AgentMessage.MessageOneofCase.Register)
        {
            Register(session, message.Register);
            return;
        }
        if (session.AgentId is null || !_agents.TryGet(session.AgentId, out var agent) || agent.Link != session)
        {
            session.Outbox.Close(new RpcException(new Status(StatusCode.FailedPrecondition, "send `register` first on a new AgentLink stream")));
            return;
        }
        switch (message.MessageCase)
        {
            case AgentMessage.MessageOneofCase.Heartbeat:
                // Sent before the stream's registration was handled (later ones are answered off the loop).
                _liveness.Ping(session, message.Heartbeat.Sequence);
                break;
            case AgentMessage.MessageOneofCase.StatusUpdates:
                foreach (var update in message.StatusUpdates.Updates)
                {
                    OnStatusUpdate(agent, update);
                }
                break;
            case AgentMessage.MessageOneofCase.Usage:
                agent.Usage = message.Usage.Total;
                break;
            case AgentMessage.MessageOneofCase.ExecutorMessage:
                if (_frameworks.TryGet(message.ExecutorMessage.FrameworkId, out var fw))
                {
                    fw.Subscription?.Outbox.Send(new Event
                    {
                        Message = new Event.Types.Message { AgentId = agent.Id, ExecutorId = message.ExecutorMessage.TaskId, Data = message.ExecutorMessage.Data },
                    });
                }
                break;
            default:
                break;
        }
    }

    /// <summary>The agent's stream ended. The agent stays registered until the agent timeout.</summary>
    public void OnAgentLinkClosed(AgentLinkSession session)
    {
        session.Outbox.Close();
        if (session.AgentId is not null && _agents.TryGet(session.AgentId, out var agent) && agent.Link == session)
        {
            agent.Link = null;
        }
    }

    private void Register(AgentLinkSession session, AgentMessage.Types.Register register)
    {
        var info = register.AgentInfo ?? new AgentInfo();
        var problem = ResourceChecks.Validate(info.Resources);
        if (problem is null && info.Resources.Count == 0)
        {
            problem = "the agent offers no resources; give --resources or let the agent detect them";
        }
        var kinds = info.Resources.Select(r => r.Name).Distinct(StringComparer.Ordinal).Count();
        if (problem is null && kinds > _options.MaxAgentResourceKinds)
        {
            problem = $"the agent offers {kinds} kinds of resources but this master accepts at most {_options.MaxAgentResourceKinds} (--max-agent-resource-kinds); give the agent fewer in --resources";
        }
        if (problem is not null)
        {
            MasterLog.AgentRefused(_logger, problem);
            session.Outbox.Close(MasterErrors.InvalidArgument($"bad agent resources: {problem}"));
            return;
        }
        if (session.AgentId is not null)
        {
            session.Outbox.Close(MasterErrors.FailedPrecondition("this stream already registered; open a new stream to re-register"));
            return;
        }
        var id = info.Id;
        if (id.Length > 0 && _agents.IsGone(id))
        {
            MasterLog.AgentRefused(_logger, $"agent {id} was marked gone");
            RefuseGone(session, id);
            return;
        }
        var isNew = id.Length == 0;
        if (isNew)
        {
            id = $"agent-{Guid.NewGuid():N}";
            info = info.Clone();
            info.Id = id;
        }
        if (Security.Enforced && _agents.TryGet(id, out var bound) && bound.Principal.Length > 0 && bound.Principal != session.Principal)
        {
            MasterLog.AgentRefused(_logger, $"principal '{session.Principal}' tried to register agent {id}, which is bound to principal '{bound.Principal}'");
            session.Outbox.Close(MasterErrors.PermissionDenied($"agent {id} is registered by principal '{bound.Principal}'; principal '{session.Principal}' may not register as it (start a new agent with an empty work dir to get a new id)"));
            return;
        }
        var droppedReservations = false;
        if (!_agents.TryGet(id, out var agent))
        {
            agent = new AgentEntry(info) { RegisteredTime = NowSeconds, Status = AgentStatus.AgentUnreachable };
            agent.Resources.Configure(ShareAgentInfo(info));
            _agents.Add(agent);
            agent.InAllocator = false;
        }
        else
        {
            if (agent.Link is { } old && old != session)
            {
                old.Outbox.Close(MasterErrors.FailedPrecondition("the agent re-registered on a newer stream"));
            }
            agent.Info = info;
            droppedReservations = Configure(agent);
        }
        var rebound = Security.Enforced && agent.Principal != session.Principal;
        if (rebound)
        {
            agent.Principal = session.Principal;
        }
        var wasActive = agent.Status is AgentStatus.AgentActive or AgentStatus.AgentDraining;
        var previousTasks = _tasks.OnAgent(id).ToList();
        agent.Link = session;
        session.AgentId = id;
        agent.Status = agent.Draining ? AgentStatus.AgentDraining : AgentStatus.AgentActive;
        _liveness.Registered(agent, _agents.Count);
        agent.UnreachableSince = null;
        _agents.Arrived(id);

        // Offers on the agent are stale: its resources are about to be re-counted.
        foreach (var offer in _offers.ForAgent(id))
        {
            RescindOffer(offer, $"rescinded: agent {id} re-registered");
        }
        // Kills of reported tasks wait for `registered`, the first message of every stream (an
        // agent drops a stream that starts otherwise, re-registers, and would be killed first again).
        var kills = _killsAfterRegistered = [];
        List<AllocationUse> used;
        try
        {
            used = AdoptReportedTasks(agent, register, previousTasks, authoritative: agent.RegisteredThisTerm);
        }
        finally
        {
            _killsAfterRegistered = null;
        }
        agent.RegisteredThisTerm = true;
        if (agent.InAllocator)
        {
            _allocator.RemoveAgent(id);
        }
        agent.Resources.ResetGranted(used.Select(u => u.Resources));
        _allocator.AddAgent(Spec(agent), used);
        agent.InAllocator = true;
        if (used.Count > 0 && !_quotaBook.IsEmpty)
        {
            // Tasks the master learns of only now (after a failover) count against their roles'
            // limits: offers made while they were unknown must not keep a role above its limit.
            EnforceQuotaLimits(used.Select(u => u.Role).Distinct(StringComparer.Ordinal)
                .SelectMany(_quotaBook.LimitsOver).DistinctBy(q => q.Role).ToList());
        }

        if (isNew || !wasActive || droppedReservations || rebound)
        {
            Persist(RegistryWrite.Put(RegistryRecords.AgentKey(id), ToRecord(agent)));
        }
        session.Outbox.Send(new MasterMessage
        {
            Registered = new MasterMessage.Types.Registered
            {
                AgentId = id,
                HeartbeatIntervalSeconds = _liveness.HeartbeatInterval.TotalSeconds,
                Master = Self,
                CheckpointedResources = { agent.Resources.Checkpointed },
            },
        });
        foreach (var kill in kills)
        {
            session.Outbox.Send(kill);
        }
        if (isNew || !wasActive && previousTasks.Count == 0)
        {
            MasterLog.AgentRegistered(_logger, id, info.Hostname, agent.Resources.TotalBag().ToString());
            Emit(new OperatorEvent { AgentAdded = new OperatorEvent.Types.AgentAdded { Agent = AgentState(agent) } });
        }
        else
        {
            MasterLog.AgentReregistered(_logger, id, register.Tasks.Count);
        }
    }

    /// <summary>
    /// Takes the agent's word for its tasks: reported tasks become live (frameworks unknown to
    /// this master are rebuilt, disconnected, from the FrameworkInfos sent along); tasks the master
    /// had on the agent but that were not reported are gone. Returns what the tasks use.
    /// <para>
    /// Tasks of removed frameworks are killed (the framework shut down on the agent). When
    /// <paramref name="authoritative"/> (the agent already registered in this term, so the master
    /// saw every task launched on it), a reported live task the master does not have on this agent
    /// — it ended, was given up as lost, or never came from this master — is killed too; its
    /// TASK_KILLED update reaches the framework as any update for an unknown task does.
    /// </para>
    /// </summary>
    private List<AllocationUse> AdoptReportedTasks(AgentEntry agent, AgentMessage.Types.Register register, List<TaskEntry> previous, bool authoritative)
    {
        var now = NowSeconds;
        var reported = new HashSet<(string, string)>();
        var used = new List<AllocationUse>();
        foreach (var reportedTask in register.Tasks)
        {
            var fwId = reportedTask.FrameworkId;
            if (fwId.Length == 0 || reportedTask.TaskId.Length == 0)
            {
                continue;
            }
            if (!_frameworks.TryGet(fwId, out var fw))
            {
                if (_frameworks.IsRemoved(fwId))
                {
                    MasterLog.KillingUnknownTask(_logger, agent.Id, reportedTask.TaskId, fwId, "belongs to a removed framework");
                    SendAfterRegistered(agent, new MasterMessage
                    {
                        ShutdownFramework = new MasterMessage.Types.ShutdownFramework { FrameworkId = fwId, Reason = TaskStatus.Types.Reason.FrameworkRemoved },
                    });
                    continue;
                }
                if (authoritative && !TaskLifecycle.IsTerminal(reportedTask.State))
                {
                    KillUnknownTask(agent, fwId, reportedTask.TaskId, "belongs to a framework the master does not know");
                    continue;
                }
                var info = register.Frameworks.FirstOrDefault(f => f.Id == fwId) ?? new FrameworkInfo { Id = fwId, Name = fwId };
                fw = new FrameworkEntry(info) { RegisteredTime = now, DisconnectedTime = now, FailoverDeadline = RecoveredFailoverDeadline(now, info.FailoverTimeoutSeconds) };
                _frameworks.Add(fw);
                _allocator.AddFramework(Spec(fw), []);
                _allocator.DeactivateFramework(fwId);
                Persist(RegistryWrite.Put(RegistryRecords.FrameworkKey(fwId), ToRecord(fw)));
            }
            var role = reportedTask.Role.Length > 0
                ? reportedTask.Role
                : (reportedTask.Info?.Resources ?? reportedTask.Resources).Select(r => r.AllocationRole).FirstOrDefault(r => r.Length > 0) ?? fw.Info.Roles.FirstOrDefault() ?? "*";
            var task = ReportedEntry(reportedTask, fw, agent, role);
            var known = _tasks.Live(fwId, task.TaskId);
            if (authoritative && !TaskLifecycle.IsTerminal(task.State) && (known is null || known.AgentId != agent.Id))
            {
                KillUnknownTask(agent, fwId, task.TaskId, known is null ? "the master does not know as live" : $"the master has on agent {known.AgentId}");
                continue;
            }
            if (known is not null)
            {
                _tasks.RemoveLive(known);
            }
            if (TaskLifecycle.IsTerminal(task.State))
            {
                // The agent still holds an unacknowledged terminal update; it will re-send it.
                _tasks.AddCompleted(task);
                continue;
            }
            reported.Add((fwId, task.TaskId));
            _tasks.Add(task);
            used.Add(new AllocationUse(fwId, agent.Id, task.Role, task.Resources)); // never mutated: no copy
            if (known is not null && known.State != task.State)
            {
                // E.g. TASK_UNREACHABLE → TASK_RUNNING: tell the framework the task is back.
                var status = task.Status() ?? task.MasterStatus(task.State, TaskStatus.Types.Reason.Unspecified, "", now);
                status.Source = TaskStatus.Types.Source.Master;
                status.Uuid = "";
                status.State = task.State;
                status.Message = $"agent {agent.Id} re-registered; the task is {task.State}";
                status.Timestamp = now;
                fw.Subscription?.Outbox.Send(new Event { Update = new Event.Types.Update { Status = status } });
            }
        }
        foreach (var old in previous)
        {
            if (reported.Contains((old.FrameworkId, old.TaskId)))
            {
                continue;
            }
            if (!_tasks.RemoveLive(old) || !_frameworks.TryGet(old.FrameworkId, out var fw))
            {
                continue;
            }
            var state = old.State == TaskState.TaskStaging ? TaskState.TaskDropped : fw.PartitionAware ? TaskState.TaskGone : TaskState.TaskLost;
            var status = old.MasterStatus(state, TaskStatus.Types.Reason.AgentRestarted,
                $"agent {agent.Id} re-registered without this task; relaunch it if still needed", now);
            old.State = state;
            old.SetStatus(status);
            _tasks.AddCompleted(old);
            fw.Subscription?.Outbox.Send(new Event { Update = new Event.Types.Update { Status = status } });
        }
        return used;
    }

    /// <summary>Kills and framework shutdowns decided while a registration is handled, sent after its `registered`.</summary>
    private List<MasterMessage>? _killsAfterRegistered;

    private void KillUnknownTask(AgentEntry agent, string frameworkId, string taskId, string why)
    {
        MasterLog.KillingUnknownTask(_logger, agent.Id, taskId, frameworkId, why);
        SendAfterRegistered(agent, new MasterMessage
        {
            Kill = new MasterMessage.Types.KillTask { FrameworkId = frameworkId, TaskId = taskId, Reason = TaskStatus.Types.Reason.TaskUnknown },
        });
    }

    /// <summary>Sends to the agent, after `registered` when a registration is being handled.</summary>
    private void SendAfterRegistered(AgentEntry agent, MasterMessage message)
    {
        if (_killsAfterRegistered is { } later)
        {
            later.Add(message);
        }
        else
        {
            agent.Link!.Outbox.Send(message);
        }
    }

    /// <summary>Marks unreachable every active agent silent for longer than the agent timeout.</summary>
    private void CheckAgentTimeouts(DateTimeOffset now)
    {
        var silent = _liveness.Silent(now, agent => agent.Status is AgentStatus.AgentActive or AgentStatus.AgentDraining && agent.InAllocator
            && _agents.IsCurrent(agent));
        foreach (var (agent, why) in silent)
        {
            MarkUnreachable(agent, why);
        }
    }

    private void MarkUnreachable(AgentEntry agent, string why)
    {
        MasterLog.AgentUnreachable(_logger, agent.Id, why);
        agent.Status = AgentStatus.AgentUnreachable;
        agent.UnreachableSince = Now;
        agent.Link?.Outbox.Close(MasterErrors.Unavailable($"agent {agent.Id} was marked unreachable ({why}); re-register"));
        agent.Link = null;
        foreach (var offer in _offers.ForAgent(agent.Id))
        {
            RescindOffer(offer, $"rescinded: agent {agent.Id} became unreachable");
        }
        var now = NowSeconds;
        foreach (var task in _tasks.OnAgent(agent.Id))
        {
            if (!_frameworks.TryGet(task.FrameworkId, out var fw))
            {
                continue;
            }
            task.State = TaskState.TaskUnreachable;
            var sent = fw.PartitionAware ? TaskState.TaskUnreachable : TaskState.TaskLost;
            var status = task.MasterStatus(sent, TaskStatus.Types.Reason.AgentDisconnected,
                $"agent {agent.Id} stopped responding ({why}); the task may still be running and will be reported again if the agent comes back", now);
            task.SetStatus(status);
            fw.Subscription?.Outbox.Send(new Event { Update = new Event.Types.Update { Status = status } });
            Emit(new OperatorEvent { TaskUpdated = new OperatorEvent.Types.TaskUpdated { FrameworkId = fw.Id, Status = status, State = task.State } });
        }
        _allocator.DeactivateAgent(agent.Id);
        Persist(RegistryWrite.Put(RegistryRecords.AgentKey(agent.Id), ToRecord(agent)));
    }

    private void SendToAgent(string agentId, MasterMessage message)
    {
        if (_agents.TryGet(agentId, out var agent))
        {
            agent.Link?.Outbox.Send(message);
        }
    }
}
