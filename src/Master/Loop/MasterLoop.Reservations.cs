using Sched.V1;
using Scheduler.Master.Registry;
using Scheduler.Master.State;
using Scheduler.Master.Telemetry;
using Scheduler.Master.Validation;
using Scheduler.Protocol.Resources;

namespace Scheduler.Master.Loop;

/// <summary>Reservations and volumes on an agent: operators' RESERVE/UNRESERVE of unused
/// resources outside any offer, and the commit of every conversion (from an Accept's operations
/// or an operator's) to the allocator, the agent's accounting and its checkpointed resources.</summary>
public sealed partial class MasterLoop
{
    /// <summary>Reserves unused resources of an agent; returns the answer and the registry write to await.</summary>
    public (ReserveResourcesResponse Response, Task Durable) ReserveResources(ReserveResourcesRequest request)
    {
        var resources = request.Resources.Select(ResourceOperations.WithDynamicDefault).ToList();
        var agent = ReservableAgent(request.AgentId, resources, "reserve");
        var from = new List<Resource>();
        var to = new List<Resource>();
        for (var i = 0; i < resources.Count; i++)
        {
            var r = CheckpointedResources.Plain(resources[i]).Clone();
            var label = $"resource #{i + 1} '{ResourceBag.Format(r)}'";
            if (r.Reservation is null)
            {
                throw MasterErrors.InvalidArgument($"{label} has no reservation; set the role to reserve for (schedctl: name(ROLE):VALUE)");
            }
            if (r.Disk is not null)
            {
                throw MasterErrors.InvalidArgument($"{label} carries disk info; operators reserve plain resources (frameworks create volumes)");
            }
            if (r.Reservation.Type == Reservation.Types.Type.Unspecified)
            {
                r.Reservation.Type = Reservation.Types.Type.Dynamic;
            }
            if (r.Reservation.Type != Reservation.Types.Type.Dynamic)
            {
                throw MasterErrors.InvalidArgument($"{label}: a {r.Reservation.Type} reservation cannot be made at run time; static ones come from the agent's --resources");
            }
            if (RoleName.Validate(r.Reservation.Role) is { } bad)
            {
                throw MasterErrors.InvalidArgument($"{label}: {bad}");
            }
            var source = r.Clone();
            source.Reservation = r.Reservation.RefinedFrom?.Clone();
            if (r.Reservation.RefinedFrom is { } parent && (parent.Role == r.Reservation.Role || !RoleName.IsSelfOrDescendant(r.Reservation.Role, parent.Role)))
            {
                throw MasterErrors.InvalidArgument($"{label}: a refined reservation must be for a sub-role of '{parent.Role}', not '{r.Reservation.Role}'");
            }
            from.Add(source);
            to.Add(r);
        }
        return ApplyOperatorConversion(agent, from, to, new Operation { Reserve = new Operation.Types.Reserve { Resources = { to } } }, "reserve",
            total => new ReserveResourcesResponse { Total = { total } });
    }

    /// <summary>Removes dynamic reservations of unused resources; returns the answer and the registry write to await.</summary>
    public (UnreserveResourcesResponse Response, Task Durable) UnreserveResources(UnreserveResourcesRequest request)
    {
        var agent = ReservableAgent(request.AgentId, request.Resources, "unreserve");
        var from = new List<Resource>();
        var to = new List<Resource>();
        for (var i = 0; i < request.Resources.Count; i++)
        {
            var r = CheckpointedResources.Plain(request.Resources[i]);
            var label = $"resource #{i + 1} '{ResourceBag.Format(r)}'";
            if (r.Reservation is not { Type: Reservation.Types.Type.Dynamic })
            {
                throw MasterErrors.InvalidArgument($"{label} is not dynamically reserved; give the resources as GetAgents shows them (static reservations cannot be removed at run time)");
            }
            if (r.Disk is not null)
            {
                throw MasterErrors.InvalidArgument($"{label} is a persistent volume; its framework must DESTROY it first");
            }
            if (agent.Resources.ReservationMismatch(agent.Id, r, label) is { } mismatch)
            {
                throw MasterErrors.FailedPrecondition(mismatch);
            }
            var target = r.Clone();
            target.Reservation = r.Reservation.RefinedFrom?.Clone();
            from.Add(r);
            to.Add(target);
        }
        return ApplyOperatorConversion(agent, from, to, new Operation { Unreserve = new Operation.Types.Unreserve { Resources = { from } } }, "unreserve",
            total => new UnreserveResourcesResponse { Total = { total } });
    }

    private AgentEntry ReservableAgent(string agentId, IReadOnlyCollection<Resource> resources, string verb)
    {
        var agent = OperatorAgent(agentId);
        if (resources.Count == 0)
        {
            throw MasterErrors.InvalidArgument($"resources is empty: give the resources to {verb}");
        }
        if (ResourceChecks.Validate(resources) is { } bad)
        {
            throw MasterErrors.InvalidArgument(bad);
        }
        if (!agent.InAllocator || agent.Link is null || agent.Status is not (AgentStatus.AgentActive or AgentStatus.AgentDraining))
        {
            throw MasterErrors.FailedPrecondition($"agent {agent.Id} is not connected; {verb} once it is back");
        }
        return agent;
    }

    private (T Response, Task Durable) ApplyOperatorConversion<T>(AgentEntry agent, List<Resource> from, List<Resource> to, Operation operation, string verb, Func<IReadOnlyList<Resource>, T> answer)
    {
        // Outstanding offers hold resources that are unused; take them back so they can be converted.
        foreach (var offer in _offers.ForAgent(agent.Id))
        {
            RescindOffer(offer, $"rescinded: an operator is changing reservations on agent {agent.Id}");
        }
        if (agent.Resources.Unused().FindShortfall(from) is { } shortfall)
        {
            throw MasterErrors.FailedPrecondition($"cannot {verb} on agent {agent.Id}: the resources are not unused ({shortfall.Replace("offered", "unused", StringComparison.Ordinal)}); wait for tasks to end or ask for less");
        }
        Dropped(agent, agent.Resources.Convert(from, to));
        _allocator.UpdateAgent(Spec(agent));
        agent.Link?.Outbox.Send(new MasterMessage
        {
            ApplyOperations = new MasterMessage.Types.ApplyOperations { Operations = { operation }, CheckpointedResources = { agent.Resources.Checkpointed } },
        });
        var durable = PersistDurably(RegistryWrite.Put(RegistryRecords.AgentKey(agent.Id), ToRecord(agent)));
        return (answer(agent.Resources.Total), durable);
    }

    /// <summary>Commits one planned conversion: allocator (allocation and total), the master's
    /// accounting of the agent, and its checkpointed resources.</summary>
    private void ApplyConversion(FrameworkEntry fw, AgentEntry agent, Conversion c)
    {
        var from = c.From.Select(r => WithRole(r, c.Role)).ToList();
        var to = c.To.Select(r => WithRole(r, c.Role)).ToList();
        _allocator.UpdateAllocation(fw.Id, agent.Id, from, to);
        agent.Resources.ConvertGranted(from, to);
        Dropped(agent, agent.Resources.Convert(c.From, c.To));
        _allocator.UpdateAgent(Spec(agent));
        MasterLog.OperationApplied(_logger, agent.Id, c.Operation.OperationCase, fw.Id, c.Role, new ResourceBag(c.From), new ResourceBag(c.To));
    }

    private static Resource WithRole(Resource r, string role)
    {
        var copy = r.Clone();
        copy.AllocationRole = role;
        return copy;
    }

    /// <summary>Gives the agent its (re-reported) configuration, shared with agents of the same
    /// shape, and the checkpointed resources restored from the registry when given; returns whether
    /// some checkpointed resource no longer fit and was dropped (the caller persists the record).</summary>
    private bool Configure(AgentEntry agent, IEnumerable<Resource>? checkpointed = null) =>
        Dropped(agent, agent.Resources.Configure(ShareAgentInfo(agent.Info), checkpointed));

    private bool Dropped(AgentEntry agent, IReadOnlyList<Resource> dropped)
    {
        if (dropped.Count > 0)
        {
            MasterLog.CheckpointedResourcesDropped(_logger, agent.Id, new ResourceBag(dropped));
        }
        return dropped.Count > 0;
    }
}
