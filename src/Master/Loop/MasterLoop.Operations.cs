using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Sched.V1;
using Scheduler.Master.Registry;
using Scheduler.Master.State;
using Scheduler.Master.Validation;
using Scheduler.Protocol.Resources;
using Grpc.Core;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Loop;

/// <summary>
/// Accept's resource operations (Mesos semantics): RESERVE turns offered unreserved (or
/// ancestor-reserved) resources into a dynamic reservation for the offer's role; UNRESERVE undoes
/// one; CREATE makes a persistent volume out of reserved disk; DESTROY turns a volume back into
/// reserved disk. Each is checked against what is left of the offers at its place in the call, so
/// a later operation or task of the same call can use its result. Results are converted in place
/// in the allocator (the framework keeps them for the rest of the call, leftovers come back to the
/// allocator), recorded on the agent's checkpointed resources, persisted, and sent to the agent.
/// </summary>
public sealed partial class MasterLoop
{
    private static readonly Regex VolumeId = new("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", RegexOptions.CultureInvariant);

    /// <summary>One step of a planned Accept: a task (launched under Role, or refused with Problem)
    /// or a resource conversion.</summary>
    private sealed record TaskStep(TaskInfo? Task, string? Role, string? Problem, TaskStatus.Types.Reason Reason)
    {
        public Conversion? Conversion { get; init; }
    }

    /// <summary>A validated operation: <see cref="From"/> of the offer (allocated to
    /// <see cref="Role"/>) becomes <see cref="To"/>; <see cref="Operation"/> is what the agent gets.</summary>
    private sealed record Conversion(string Role, List<Resource> From, List<Resource> To, Operation Operation);

    /// <summary>
    /// Validates every operation in order against <paramref name="remaining"/> (updated as it goes)
    /// without changing master state. Throws INVALID_ARGUMENT naming the first bad operation.
    /// </summary>
    private List<TaskStep> Plan(FrameworkEntry fw, AgentEntry agent, IList<Operation> operations, Dictionary<string, ResourceBag> remaining)
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
                    var step = PlanTask(fw, task, agent.Id, inCall, remaining);
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
                Operation.OperationOneofCase.Reserve => [.. op.Reserve.Resources.Select(WithDynamicDefault)],
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
            var byRole = new Dictionary<string, (List<Resource> From, List<Resource> To)>(StringComparer.Ordinal);
            foreach (var r in resources)
            {
                var role = OperationRole(r, remaining, label);
                var (from, to) = op.OperationCase switch
                {
                    Operation.OperationOneofCase.Reserve => PlanReserve(fw, r, role, label),
                    Operation.OperationOneofCase.Unreserve => PlanUnreserve(r, label),
                    Operation.OperationOneofCase.Create => PlanCreate(fw, agent, r, created, label),
                    _ => PlanDestroy(agent, r, usedByPlanned, created, label),
                };
                if (remaining[role].FindShortfall([from]) is { } shortfall)
                {
                    throw MasterErrors.InvalidArgument($"{label}: {Describe(from)} is not in the accepted offers ({shortfall}); "
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
                steps.Add(new TaskStep(null, null, null, TaskStatus.Types.Reason.Unspecified) { Conversion = new Conversion(role, from, to, AgentOperation(op.OperationCase, from, to)) });
            }
        }
        return steps;
    }

    /// <summary>A reservation without a type is a dynamic one (what RESERVE makes).</summary>
    internal static Resource WithDynamicDefault(Resource r)
    {
        if (r.Reservation is not { Type: Reservation.Types.Type.Unspecified })
        {
            return r;
        }
        var c = r.Clone();
        c.Reservation.Type = Reservation.Types.Type.Dynamic;
        return c;
    }

    private static string OperationRole(Resource r, Dictionary<string, ResourceBag> remaining, string label)
    {
        if (r.AllocationRole.Length > 0)
        {
            return remaining.ContainsKey(r.AllocationRole)
                ? r.AllocationRole
                : throw MasterErrors.InvalidArgument($"{label}: {Describe(r)} names allocation_role '{r.AllocationRole}' but the offers are for {string.Join(", ", remaining.Keys)}");
        }
        return remaining.Count == 1
            ? remaining.Keys.First()
            : throw MasterErrors.InvalidArgument($"{label}: {Describe(r)} has no allocation_role and the offers are for several roles ({string.Join(", ", remaining.Keys)}); copy allocation_role from the offer");
    }

    private static (Resource From, Resource To) PlanReserve(FrameworkEntry fw, Resource r, string role, string label)
    {
        if (r.Reservation is null)
        {
            throw MasterErrors.InvalidArgument($"{label}: {Describe(r)} has no reservation; set reservation.role to the role to reserve for");
        }
        if (r.Disk is not null)
        {
            throw MasterErrors.InvalidArgument($"{label}: {Describe(r)} carries disk info; RESERVE plain disk, then CREATE the volume on it");
        }
        var target = CheckpointedResources.Plain(r).Clone();
        var res = target.Reservation;
        if (res.Type == Reservation.Types.Type.Unspecified)
        {
            res.Type = Reservation.Types.Type.Dynamic;
        }
        if (res.Type != Reservation.Types.Type.Dynamic)
        {
            throw MasterErrors.InvalidArgument($"{label}: {Describe(r)} asks for a {res.Type} reservation; RESERVE makes DYNAMIC ones (static ones come from the agent's --resources)");
        }
        if (!fw.Info.Roles.Contains(res.Role))
        {
            throw MasterErrors.InvalidArgument($"{label}: the framework is not in role '{res.Role}' (its roles: {string.Join(", ", fw.Info.Roles)}); reserve only for a role of the framework");
        }
        if (res.Role != role)
        {
            throw MasterErrors.InvalidArgument($"{label}: {Describe(r)} is reserved for '{res.Role}' but taken from an offer for role '{role}'; reserve for the role the resources are offered to");
        }
        if (res.Principal.Length == 0)
        {
            res.Principal = fw.Info.Principal;
        }
        else if (res.Principal != fw.Info.Principal)
        {
            throw MasterErrors.InvalidArgument($"{label}: reservation.principal '{res.Principal}' is not the framework's principal '{fw.Info.Principal}'; leave it empty or use the framework's");
        }
        if (res.RefinedFrom is { } parent)
        {
            if (!fw.Info.Capabilities.Contains(FrameworkCapability.ReservationRefinement))
            {
                throw MasterErrors.InvalidArgument($"{label}: refining the reservation of '{parent.Role}' needs the RESERVATION_REFINEMENT capability; subscribe with it or reserve unreserved resources");
            }
            if (parent.Role == res.Role || !RoleName.IsSelfOrDescendant(res.Role, parent.Role))
            {
                throw MasterErrors.InvalidArgument($"{label}: a refined reservation must be for a sub-role of '{parent.Role}', not '{res.Role}'");
            }
        }
        var source = target.Clone();
        source.Reservation = res.RefinedFrom?.Clone();
        return (source, target);
    }

    private static (Resource From, Resource To) PlanUnreserve(Resource r, string label)
    {
        var from = CheckpointedResources.Plain(r);
        if (from.Reservation is null)
        {
            throw MasterErrors.InvalidArgument($"{label}: {Describe(r)} is not reserved; only dynamically reserved resources can be unreserved");
        }
        if (from.Reservation.Type != Reservation.Types.Type.Dynamic)
        {
            throw MasterErrors.InvalidArgument($"{label}: {Describe(r)} is a {from.Reservation.Type} reservation; only DYNAMIC ones can be unreserved (static ones come from the agent's --resources)");
        }
        if (from.Disk is not null)
        {
            throw MasterErrors.InvalidArgument($"{label}: {Describe(r)} is a persistent volume; DESTROY it before unreserving its disk");
        }
        var to = from.Clone();
        to.Reservation = from.Reservation.RefinedFrom?.Clone();
        return (from, to);
    }

    private static (Resource From, Resource To) PlanCreate(FrameworkEntry fw, AgentEntry agent, Resource r, HashSet<(string, string)> created, string label)
    {
        if (r.Name != "disk" || r.ValueCase != Resource.ValueOneofCase.Scalar)
        {
            throw MasterErrors.InvalidArgument($"{label}: {Describe(r)} is not scalar disk; persistent volumes are made of disk");
        }
        if (r.Reservation is null)
        {
            throw MasterErrors.InvalidArgument($"{label}: {Describe(r)} is unreserved; persistent volumes need reserved disk: RESERVE the disk for your role first (in this call or an earlier one)");
        }
        var id = r.Disk?.Persistence?.Id ?? "";
        if (!VolumeId.IsMatch(id))
        {
            throw MasterErrors.InvalidArgument($"{label}: disk.persistence.id '{id}' is not a valid volume id; use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit");
        }
        var path = r.Disk!.Volume?.ContainerPath ?? "";
        if (ContainerPathProblem(path) is { } pathProblem)
        {
            throw MasterErrors.InvalidArgument($"{label}: volume '{id}': {pathProblem}");
        }
        var role = r.Reservation.Role;
        if (agent.Checkpointed.Any(c => c.Disk?.Persistence?.Id == id && c.Reservation?.Role == role) || !created.Add((role, id)))
        {
            throw MasterErrors.InvalidArgument($"{label}: a volume '{id}' of role '{role}' already exists on agent {agent.Id}; choose another persistence id");
        }
        var to = CheckpointedResources.Plain(r).Clone();
        if (to.Reservation.Type == Reservation.Types.Type.Dynamic && to.Reservation.Principal.Length == 0)
        {
            // As RESERVE does: the framework's principal (so builders need not repeat it).
            to.Reservation.Principal = fw.Info.Principal;
        }
        to.Disk.Persistence.Principal = to.Disk.Persistence.Principal.Length == 0 ? fw.Info.Principal : to.Disk.Persistence.Principal;
        to.Disk.Volume.HostPath = "";
        if (to.Disk.Volume.Mode == Volume.Types.Mode.Unspecified)
        {
            to.Disk.Volume.Mode = Volume.Types.Mode.Rw;
        }
        var from = to.Clone();
        from.Disk = null;
        return (from, to);
    }

    private static (Resource From, Resource To) PlanDestroy(AgentEntry agent, Resource r, Dictionary<(string, string), string> usedByPlanned, HashSet<(string, string)> created, string label)
    {
        var id = r.Disk?.Persistence?.Id ?? "";
        if (id.Length == 0)
        {
            throw MasterErrors.InvalidArgument($"{label}: {Describe(r)} has no disk.persistence.id; name the volume to destroy as the offer shows it");
        }
        var role = r.Reservation?.Role ?? "";
        var user = agent.Tasks.FirstOrDefault(t => t.UsesVolume(id, role));
        if (user is not null || usedByPlanned.ContainsKey((role, id)))
        {
            var task = user?.TaskId ?? usedByPlanned[(role, id)];
            throw MasterErrors.InvalidArgument($"{label}: volume '{id}' is in use by task '{task}'; kill the task and wait for it to end before destroying the volume");
        }
        if (!created.Contains((role, id)) && !agent.Checkpointed.Any(c => c.Disk?.Persistence?.Id == id && (c.Reservation?.Role ?? "") == role))
        {
            throw MasterErrors.InvalidArgument($"{label}: agent {agent.Id} has no volume '{id}' of role '{role}'; destroy only volumes the offers show");
        }
        var from = CheckpointedResources.Plain(r);
        var to = from.Clone();
        to.Disk = null;
        return (from, to);
    }

    /// <summary>Null when <paramref name="path"/> is a usable relative path inside a sandbox.</summary>
    private static string? ContainerPathProblem(string path)
    {
        if (path.Length == 0)
        {
            return "disk.volume.container_path is empty; give the path (relative to the task's sandbox) where tasks see the volume";
        }
        if (path.StartsWith('/'))
        {
            return $"container_path '{path}' is absolute; give a path relative to the task's sandbox";
        }
        if (path.Split('/').Any(s => s is "" or "." or ".."))
        {
            return $"container_path '{path}' has an empty, '.' or '..' segment; give a plain relative path such as 'data'";
        }
        if (path.Contains('\0', StringComparison.Ordinal))
        {
            return "container_path contains a NUL character";
        }
        return null;
    }

    private static string Describe(Resource r)
    {
        var text = ResourceBag.Format(r);
        var role = r.Reservation is { } res ? $"({res.Role})" : "";
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        text = colon < 0 ? text + role : text[..colon] + role + text[colon..];
        return r.Disk?.Persistence is { Id.Length: > 0 } p ? $"{text}[volume {p.Id}]" : text;
    }

    /// <summary>The operation as the agent gets it: the exact resources before and after.</summary>
    private static Operation AgentOperation(Operation.OperationOneofCase kind, List<Resource> from, List<Resource> to)
    {
        var op = new Operation();
        switch (kind)
        {
            case Operation.OperationOneofCase.Reserve:
                op.Reserve = new Operation.Types.Reserve { Resources = { to } };
                break;
            case Operation.OperationOneofCase.Unreserve:
                op.Unreserve = new Operation.Types.Unreserve { Resources = { from } };
                break;
            case Operation.OperationOneofCase.Create:
                op.Create = new Operation.Types.Create { Volumes = { to } };
                break;
            default:
                op.Destroy = new Operation.Types.Destroy { Volumes = { from } };
                break;
        }
        return op;
    }

    /// <summary>Commits one planned conversion: allocator (allocation and total), the master's
    /// accounting of the agent, and its checkpointed resources.</summary>
    private void ApplyConversion(FrameworkEntry fw, AgentEntry agent, Conversion c)
    {
        var from = c.From.Select(r => WithRole(r, c.Role)).ToList();
        var to = c.To.Select(r => WithRole(r, c.Role)).ToList();
        _allocator.UpdateAllocation(fw.Id, agent.Id, from, to);
        agent.Granted.Subtract(from);
        agent.Granted.Add(to);
        agent.Checkpointed = CheckpointedResources.Convert(agent.Checkpointed, c.From, c.To);
        RecomputeTotal(agent);
        _allocator.UpdateAgent(Spec(agent));
        _logger.LogInformation("agent {Agent}: {Operation} by framework {Framework} for role {Role}: {From} -> {To}",
            agent.Id, c.Operation.OperationCase, fw.Id, c.Role, new ResourceBag(c.From), new ResourceBag(c.To));
    }

    private static Resource WithRole(Resource r, string role)
    {
        var copy = r.Clone();
        copy.AllocationRole = role;
        return copy;
    }

    /// <summary>Total = configured resources with the checkpointed ones applied. Checkpointed
    /// resources that no longer fit the agent's configuration are dropped (and logged); returns
    /// whether any was (the caller persists the agent record).</summary>
    private bool RecomputeTotal(AgentEntry agent)
    {
        if (agent.Checkpointed.Count == 0)
        {
            // Nothing applied: the configured list itself, shared with agents of the same shape.
            agent.TotalResources = ShareAgentInfo(agent.Info);
            return false;
        }
        var total = CheckpointedResources.Apply(agent.Info.Resources, agent.Checkpointed, out var applied, out var dropped);
        if (dropped.Count > 0)
        {
            _logger.LogWarning("agent {Agent}: its resources no longer hold the source of these reservations/volumes, which are dropped: {Dropped}",
                agent.Id, new ResourceBag(dropped));
            agent.Checkpointed = applied;
        }
        agent.TotalResources = total;
        return dropped.Count > 0;
    }

    /// <summary>Queues registry writes and returns a task that completes when they are durable;
    /// a lost leadership becomes UNAVAILABLE with the leader hint, other failures UNAVAILABLE.</summary>
    private Task PersistDurably(params RegistryWrite[] writes)
    {
        var write = _registry.Enqueue(writes);
        Observe(write);
        return WaitAsync(write);

        async Task WaitAsync(Task t)
        {
            try
            {
                await t.ConfigureAwait(false);
            }
            catch (RegistryFencedException)
            {
                throw MasterErrors.NotLeader(_leaderHint());
            }
            catch (Exception e) when (e is not RpcException)
            {
                throw MasterErrors.Unavailable($"the operations were applied but could not be persisted ({e.Message}); check the registry and retry");
            }
        }
    }
}
