using Sched.V1;
using Scheduler.Master.Registry;
using Scheduler.Master.State;
using Scheduler.Master.Telemetry;
using Scheduler.Master.Validation;
using Scheduler.Protocol.Resources;
using Grpc.Core;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Loop;

/// <summary>Framework subscriptions, failover and teardown.</summary>
public sealed partial class MasterLoop
{
    /// <summary>Validates a FrameworkInfo as the Subscribe contract and the operator's caps
    /// (<paramref name="limits"/>) demand; null when valid.</summary>
    public static string? ValidateFrameworkInfo(FrameworkInfo? info, MasterOptions limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        if (info is null)
        {
            return "framework_info is required";
        }
        if (string.IsNullOrWhiteSpace(info.Name))
        {
            return "framework_info.name is required: give the framework a human-readable name";
        }
        if (info.Roles.Count == 0)
        {
            return "framework_info.roles is empty: subscribe with at least one role (e.g. \"default\" or \"eng/web\")";
        }
        if (info.Roles.Count > 1 && !info.Capabilities.Contains(FrameworkCapability.MultiRole))
        {
            return $"framework_info.roles has {info.Roles.Count} roles but capabilities lack MULTI_ROLE: add MULTI_ROLE or subscribe with one role";
        }
        foreach (var role in info.Roles)
        {
            if (RoleName.Validate(role) is { } bad)
            {
                return $"invalid role in framework_info.roles: {bad}";
            }
        }
        if (info.Roles.Distinct(StringComparer.Ordinal).Count() != info.Roles.Count)
        {
            return "framework_info.roles lists a role twice";
        }
        if (double.IsNaN(info.FailoverTimeoutSeconds) || info.FailoverTimeoutSeconds < 0)
        {
            return "framework_info.failover_timeout_seconds must be a non-negative number";
        }
        if (info.FailoverTimeoutSeconds > limits.MaxFailoverTimeout.TotalSeconds)
        {
            return $"framework_info.failover_timeout_seconds is {info.FailoverTimeoutSeconds:0.###} but this master allows at most {limits.MaxFailoverTimeout.TotalSeconds:0} s (--max-failover-timeout); ask for less";
        }
        if (info.Roles.Count > limits.MaxRolesPerFramework)
        {
            return $"framework_info.roles has {info.Roles.Count} roles but this master allows at most {limits.MaxRolesPerFramework} per framework (--max-roles-per-framework); use fewer roles or several frameworks";
        }
        return null;
    }

    /// <summary>Subscribes (or re-subscribes) a framework; returns the subscription whose outbox
    /// already holds <c>Event.subscribed</c>.</summary>
    public FrameworkSubscription Subscribe(SubscribeRequest request) => Subscribe(request, Scheduler.Security.Caller.Anonymous);

    /// <summary>As <see cref="Subscribe(SubscribeRequest)"/> for <paramref name="caller"/>: the
    /// framework belongs to the caller's principal, which must be allowed to register in each of
    /// its roles; an existing framework id may be taken up only by the principal that registered it.</summary>
    public FrameworkSubscription Subscribe(SubscribeRequest request, Scheduler.Security.Caller caller)
    {
        ArgumentNullException.ThrowIfNull(caller);
        if (ValidateFrameworkInfo(request.FrameworkInfo, _options) is { } problem)
        {
            throw MasterErrors.InvalidArgument(problem);
        }
        var info = request.FrameworkInfo.Clone();
        if (!caller.IsAnonymous)
        {
            if (info.Principal.Length > 0 && info.Principal != caller.Principal)
            {
                throw MasterErrors.PermissionDenied($"framework_info.principal '{info.Principal}' is not the authenticated principal '{caller.Principal}'; leave it empty or give '{caller.Principal}'");
            }
            info.Principal = caller.Principal;
        }
        if (Security.Enforced)
        {
            foreach (var role in info.Roles)
            {
                Security.Demand(caller, Scheduler.Security.AclAction.RegisterFramework, role);
            }
            if (info.Id.Length > 0 && _frameworks.TryGet(info.Id, out var existing) && existing.Info.Principal != info.Principal)
            {
                throw MasterErrors.PermissionDenied($"framework {info.Id} is registered by principal '{existing.Info.Principal}'; principal '{caller.Display}' may not subscribe as it (subscribe without an id to register a framework of your own)");
            }
        }
        foreach (var role in request.SuppressedRoles)
        {
            if (!info.Roles.Contains(role))
            {
                throw MasterErrors.InvalidArgument($"suppressed role '{role}' is not one of the framework's roles ({string.Join(", ", info.Roles)})");
            }
        }
        var now = NowSeconds;
        var isNew = false;
        if (info.Id.Length > 0 && _frameworks.IsRemoved(info.Id))
        {
            throw MasterErrors.NotFound($"framework {info.Id} was removed (torn down or failover timeout expired); subscribe without an id to register anew");
        }
        if (info.Id.Length == 0)
        {
            info.Id = $"fw-{Guid.NewGuid():N}";
        }
        if (!_frameworks.TryGet(info.Id, out var fw))
        {
            isNew = true;
            fw = new FrameworkEntry(info) { RegisteredTime = now };
            _frameworks.Add(fw);
        }
        var oldSub = fw.Subscription;
        oldSub?.Outbox.Close(MasterErrors.FailedPrecondition("a newer subscription of this framework replaced this stream"));
        fw.Info = info;
        fw.SuppressedRoles.Clear();
        fw.SuppressedRoles.UnionWith(request.SuppressedRoles);
        fw.DisconnectedTime = 0;
        fw.FailoverDeadline = null;
        var sub = new FrameworkSubscription(Guid.NewGuid().ToString("N"));
        fw.Subscription = sub;
        if (isNew)
        {
            _allocator.AddFramework(Spec(fw), []);
        }
        else
        {
            _allocator.UpdateFramework(Spec(fw));
            _allocator.ActivateFramework(fw.Id);
            // Offers made to the previous subscription are void.
            foreach (var offer in _offers.ForFramework(fw.Id))
            {
                RescindOffer(offer, "rescinded: the framework re-subscribed", tellFramework: false);
            }
        }
        sub.Outbox.Send(new Event
        {
            Subscribed = new Event.Types.Subscribed
            {
                FrameworkId = fw.Id,
                StreamId = sub.StreamId,
                HeartbeatIntervalSeconds = _options.FrameworkHeartbeatInterval.TotalSeconds,
                Master = Self,
            },
        });
        Persist(RegistryWrite.Put(RegistryRecords.FrameworkKey(fw.Id), ToRecord(fw)));
        MasterLog.FrameworkSubscribed(_logger, fw.Id, info.Name, string.Join(",", info.Roles));
        Emit(isNew
            ? new OperatorEvent { FrameworkAdded = new OperatorEvent.Types.FrameworkAdded { Framework = FrameworkState(fw) } }
            : new OperatorEvent { FrameworkUpdated = new OperatorEvent.Types.FrameworkUpdated { Framework = FrameworkState(fw) } });
        return sub;
    }

    /// <summary>The Subscribe stream ended (client gone). Starts the failover timer if it was current.</summary>
    public void OnSubscriptionClosed(string frameworkId, FrameworkSubscription subscription)
    {
        subscription.Outbox.Close();
        if (!_frameworks.TryGet(frameworkId, out var fw) || fw.Subscription != subscription)
        {
            return;
        }
        fw.Subscription = null;
        if (fw.Info.FailoverTimeoutSeconds <= 0)
        {
            RemoveFramework(fw, TaskStatus.Types.Reason.FrameworkFailoverTimeout, "disconnected with failover_timeout_seconds = 0");
            return;
        }
        // One clock reading for both: the persisted time and the in-memory deadline must agree.
        var now = Now;
        fw.DisconnectedTime = now.ToUnixTimeMilliseconds() / 1000.0;
        fw.FailoverDeadline = DateTimeOffset.FromUnixTimeMilliseconds((long)((fw.DisconnectedTime + fw.Info.FailoverTimeoutSeconds) * 1000));
        _allocator.DeactivateFramework(fw.Id);
        foreach (var offer in _offers.ForFramework(fw.Id))
        {
            RescindOffer(offer, "rescinded: the framework disconnected", tellFramework: false);
        }
        Persist(RegistryWrite.Put(RegistryRecords.FrameworkKey(fw.Id), ToRecord(fw)));
        MasterLog.FrameworkDisconnected(_logger, fw.Id, fw.FailoverDeadline.Value);
        Emit(new OperatorEvent { FrameworkUpdated = new OperatorEvent.Types.FrameworkUpdated { Framework = FrameworkState(fw) } });
    }

    private void CheckFailoverDeadlines(DateTimeOffset now)
    {
        foreach (var fw in _frameworks.PastFailoverDeadline(now))
        {
            RemoveFramework(fw, TaskStatus.Types.Reason.FrameworkFailoverTimeout,
                $"did not re-subscribe within its failover timeout of {fw.Info.FailoverTimeoutSeconds:0.###} s");
        }
    }

    /// <summary>Removes a framework: offers rescinded, tasks killed on their agents, resources
    /// recovered, record deleted, stream closed.</summary>
    private void RemoveFramework(FrameworkEntry fw, TaskStatus.Types.Reason reason, string why)
    {
        MasterLog.FrameworkRemoved(_logger, fw.Id, why);
        foreach (var offer in _offers.ForFramework(fw.Id))
        {
            RescindOffer(offer, $"rescinded: framework removed ({why})", tellFramework: false);
        }
        // Updates forwarded but not acknowledged will never be: acknowledge them for the framework
        // (as for updates arriving after its removal), so agents drain their queues now instead
        // of after a retry interval.
        var acks = new Dictionary<string, MasterMessage.Types.StatusAcks>(StringComparer.Ordinal);
        foreach (var task in _tasks.LiveOf(fw.Id).Concat(_tasks.CompletedOf(fw.Id)))
        {
            if (task.StatusAcknowledged || !task.HasStatus || task.StatusFromMaster || task.StatusUuid is not { Length: > 0 } uuid)
            {
                continue;
            }
            if (!acks.TryGetValue(task.AgentId, out var forAgent))
            {
                acks[task.AgentId] = forAgent = new MasterMessage.Types.StatusAcks();
            }
            forAgent.Acks.Add(new MasterMessage.Types.StatusAck { FrameworkId = fw.Id, TaskId = task.TaskId, Uuid = uuid });
        }
        var agents = new HashSet<string>(StringComparer.Ordinal);
        var now = NowSeconds;
        var live = _tasks.LiveOf(fw.Id).ToList();
        foreach (var task in live)
        {
            agents.Add(task.AgentId);
            Recover(fw.Id, task.AgentId, task.Resources, null);
            task.State = TaskState.TaskKilled;
            task.SetStatus(task.MasterStatus(TaskState.TaskKilled, reason, $"framework {fw.Id} removed: {why}", now));
        }
        foreach (var (agentId, forAgent) in acks)
        {
            SendToAgent(agentId, new MasterMessage { Acks = forAgent });
        }
        foreach (var agentId in agents)
        {
            SendToAgent(agentId, new MasterMessage { ShutdownFramework = new MasterMessage.Types.ShutdownFramework { FrameworkId = fw.Id, Reason = reason } });
        }
        // The killed tasks join the completed ones, and the framework stays visible for them for a
        // while: 'schedctl tasks --all' and 'logs' still find what a torn-down framework ran.
        foreach (var task in live)
        {
            _tasks.Complete(task);
        }
        _allocator.RemoveFramework(fw.Id);
        var droppedTombstones = _frameworks.Remove(fw, _tasks.RemoveFramework(fw.Id));
        if (fw.Subscription is { } sub)
        {
            sub.Outbox.Send(new Event { Error = new Event.Types.Error { Message = $"framework {fw.Id} removed: {why}" } });
            sub.Outbox.Close();
        }
        // A tombstone, not a delete: a later leader must refuse the id too.
        Persist(RegistryWrite.Put(RegistryRecords.FrameworkKey(fw.Id), new FrameworkRecord { Info = fw.Info, RegisteredTime = fw.RegisteredTime, RemovedTime = now }));
        ForgetTombstones(droppedTombstones);
        Emit(new OperatorEvent { FrameworkRemoved = new OperatorEvent.Types.FrameworkRemoved { Framework = fw.Info } });
    }

    /// <summary>Checks framework id and stream id of a call; returns the framework.</summary>
    private FrameworkEntry Caller(string frameworkId, string streamId)
    {
        if (string.IsNullOrEmpty(frameworkId))
        {
            throw MasterErrors.InvalidArgument("framework_id is required: use the id from Event.subscribed");
        }
        if (!_frameworks.TryGet(frameworkId, out var fw))
        {
            throw _frameworks.IsRemoved(frameworkId)
                ? MasterErrors.NotFound($"framework {frameworkId} was removed; subscribe anew")
                : MasterErrors.NotFound($"framework {frameworkId} is not known to this master; subscribe first");
        }
        if (fw.Subscription is null || fw.Subscription.StreamId != streamId)
        {
            throw MasterErrors.FailedPrecondition($"stream_id '{streamId}' is not the framework's current subscription; re-subscribe");
        }
        return fw;
    }

    public DeclineResponse Decline(DeclineRequest request)
    {
        var fw = Caller(request.FrameworkId, request.StreamId);
        var refuse = RefuseFor(request.Filters);
        foreach (var id in request.OfferIds)
        {
            if (_offers.TryGet(id, out var offer) && offer.Offer.FrameworkId == fw.Id)
            {
                _offers.Retire(id, "it was declined");
                Recover(fw.Id, offer.Offer.AgentId, offer.Offer.Resources, refuse);
            }
        }
        return new DeclineResponse();
    }

    public ReviveResponse Revive(ReviveRequest request)
    {
        var fw = Caller(request.FrameworkId, request.StreamId);
        CheckRoles(fw, request.Roles);
        if (request.Roles.Count == 0)
        {
            fw.SuppressedRoles.Clear();
        }
        else
        {
            fw.SuppressedRoles.ExceptWith(request.Roles);
        }
        _allocator.ReviveOffers(fw.Id, [.. request.Roles]);
        return new ReviveResponse();
    }

    public SuppressResponse Suppress(SuppressRequest request)
    {
        var fw = Caller(request.FrameworkId, request.StreamId);
        CheckRoles(fw, request.Roles);
        fw.SuppressedRoles.UnionWith(request.Roles.Count == 0 ? fw.Info.Roles : request.Roles);
        _allocator.SuppressOffers(fw.Id, [.. request.Roles]);
        return new SuppressResponse();
    }

    public TeardownResponse Teardown(TeardownRequest request)
    {
        var fw = Caller(request.FrameworkId, request.StreamId);
        RemoveFramework(fw, TaskStatus.Types.Reason.FrameworkRemoved, "torn down by the framework");
        return new TeardownResponse();
    }

    /// <summary>Operator teardown (<c>Operator.TeardownFramework</c>): the framework's owner, a
    /// superuser, or a principal with teardown_framework on the owner.</summary>
    public TeardownFrameworkResponse TeardownFramework(TeardownFrameworkRequest request, Scheduler.Security.Caller caller)
    {
        ArgumentNullException.ThrowIfNull(caller);
        if (!_frameworks.TryGet(request.FrameworkId, out var fw))
        {
            throw _frameworks.IsRemoved(request.FrameworkId)
                ? MasterErrors.NotFound($"framework {request.FrameworkId} was already removed")
                : MasterErrors.NotFound($"framework '{request.FrameworkId}' is not known; 'schedctl frameworks' lists them");
        }
        Security.DemandOnOwned(caller, Scheduler.Security.AclAction.TeardownFramework, fw.Info.Principal, $"framework {fw.Id}");
        RemoveFramework(fw, TaskStatus.Types.Reason.FrameworkRemoved, $"torn down by operator principal '{caller.Display}'");
        return new TeardownFrameworkResponse();
    }

    public UpdateFrameworkResponse UpdateFramework(UpdateFrameworkRequest request) => UpdateFramework(request, Scheduler.Security.Caller.Anonymous);

    /// <summary>As <see cref="UpdateFramework(UpdateFrameworkRequest)"/>: the principal stays the
    /// framework's, and every new role must be allowed to it.</summary>
    public UpdateFrameworkResponse UpdateFramework(UpdateFrameworkRequest request, Scheduler.Security.Caller caller)
    {
        var fw = Caller(request.FrameworkId, request.StreamId);
        if (ValidateFrameworkInfo(request.FrameworkInfo, _options) is { } problem)
        {
            throw MasterErrors.InvalidArgument(problem);
        }
        if (request.FrameworkInfo.Principal.Length > 0 && request.FrameworkInfo.Principal != fw.Info.Principal)
        {
            throw MasterErrors.InvalidArgument($"framework_info.principal '{request.FrameworkInfo.Principal}' differs from the framework's principal '{fw.Info.Principal}'; a framework's principal cannot change");
        }
        if (Security.Enforced)
        {
            foreach (var role in request.FrameworkInfo.Roles.Where(r => !fw.Info.Roles.Contains(r)))
            {
                Security.Demand(caller, Scheduler.Security.AclAction.RegisterFramework, role);
            }
        }
        if (request.FrameworkInfo.Id.Length > 0 && request.FrameworkInfo.Id != fw.Id)
        {
            throw MasterErrors.InvalidArgument($"framework_info.id '{request.FrameworkInfo.Id}' differs from framework_id '{fw.Id}'");
        }
        var info = request.FrameworkInfo.Clone();
        info.Id = fw.Id;
        info.Principal = fw.Info.Principal;
        foreach (var role in request.SuppressedRoles)
        {
            if (!info.Roles.Contains(role))
            {
                throw MasterErrors.InvalidArgument($"suppressed role '{role}' is not one of the framework's roles");
            }
        }
        fw.Info = info;
        fw.SuppressedRoles.Clear();
        fw.SuppressedRoles.UnionWith(request.SuppressedRoles);
        foreach (var offer in _offers.ForFramework(fw.Id).Where(o => !info.Roles.Contains(o.Offer.Role)))
        {
            RescindOffer(offer, "rescinded: the framework left the offer's role");
        }
        _allocator.UpdateFramework(Spec(fw));
        Persist(RegistryWrite.Put(RegistryRecords.FrameworkKey(fw.Id), ToRecord(fw)));
        Emit(new OperatorEvent { FrameworkUpdated = new OperatorEvent.Types.FrameworkUpdated { Framework = FrameworkState(fw) } });
        return new UpdateFrameworkResponse();
    }

    public MessageResponse Message(MessageRequest request)
    {
        var fw = Caller(request.FrameworkId, request.StreamId);
        if (!_agents.TryGet(request.AgentId, out var agent))
        {
            throw MasterErrors.NotFound($"agent '{request.AgentId}' is not known");
        }
        if (agent.Link is null)
        {
            throw MasterErrors.Unavailable($"agent {agent.Id} is not connected; retry later");
        }
        agent.Link.Outbox.Send(new MasterMessage
        {
            FrameworkMessage = new MasterMessage.Types.FrameworkMessage { FrameworkId = fw.Id, TaskId = request.ExecutorId, Data = request.Data },
        });
        return new MessageResponse();
    }

    private static void CheckRoles(FrameworkEntry fw, IEnumerable<string> roles)
    {
        foreach (var role in roles)
        {
            if (!fw.Info.Roles.Contains(role))
            {
                throw MasterErrors.InvalidArgument($"role '{role}' is not one of the framework's roles ({string.Join(", ", fw.Info.Roles)})");
            }
        }
    }

    /// <summary>The decline filter of a call: absent filters → 5 s; refuse_seconds 0 → none.</summary>
    private static TimeSpan? RefuseFor(Filters? filters)
    {
        if (filters is null)
        {
            return TimeSpan.FromSeconds(5);
        }
        var seconds = filters.RefuseSeconds;
        if (double.IsNaN(seconds) || seconds < 0)
        {
            return TimeSpan.FromSeconds(5);
        }
        return seconds == 0 ? null : TimeSpan.FromSeconds(Math.Min(seconds, 365 * 24 * 3600));
    }

    /// <summary>Deletes the registry tombstones of removed frameworks the book no longer remembers
    /// (beyond <see cref="MasterOptions.MaxRemovedFrameworks"/>).</summary>
    private void ForgetTombstones(List<string> frameworkIds)
    {
        foreach (var id in frameworkIds)
        {
            Persist(RegistryWrite.Delete(RegistryRecords.FrameworkKey(id)));
        }
    }
}
