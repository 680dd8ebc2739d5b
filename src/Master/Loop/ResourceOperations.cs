using System.Text.RegularExpressions;
using Sched.V1;
using Scheduler.Master.State;
using Scheduler.Master.Validation;
using Scheduler.Protocol.Resources;

namespace Scheduler.Master.Loop;

/// <summary>
/// Accept's resource operations (Mesos semantics), validated one at a time (pure: no master
/// state is changed): RESERVE turns offered unreserved (or ancestor-reserved) resources into a
/// dynamic reservation for the offer's role; UNRESERVE undoes one; CREATE makes a persistent
/// volume out of reserved disk; DESTROY turns a volume back into reserved disk. Each returns what
/// the operation takes from the offers and what it gives back; <see cref="MasterLoop"/>'s plan
/// checks that against what is left of the offers at the operation's place in the call, so a later
/// operation or task of the same call can use its result.
/// </summary>
internal static class ResourceOperations
{
    private static readonly Regex VolumeId = new("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", RegexOptions.CultureInvariant);

    /// <summary>A reservation without a type is a dynamic one (what RESERVE makes).</summary>
    public static Resource WithDynamicDefault(Resource r)
    {
        if (r.Reservation is not { Type: Reservation.Types.Type.Unspecified })
        {
            return r;
        }
        var c = r.Clone();
        c.Reservation.Type = Reservation.Types.Type.Dynamic;
        return c;
    }

    public static string OperationRole(Resource r, Dictionary<string, ResourceBag> remaining, string label)
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

    public static (Resource From, Resource To) PlanReserve(FrameworkEntry fw, Resource r, string role, string label)
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

    public static (Resource From, Resource To) PlanUnreserve(Resource r, string label)
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

    public static (Resource From, Resource To) PlanCreate(FrameworkEntry fw, AgentEntry agent, Resource r, HashSet<(string, string)> created, string label)
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
        if (agent.Resources.HoldsVolume(id, role) || !created.Add((role, id)))
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

    public static (Resource From, Resource To) PlanDestroy(AgentEntry agent, IEnumerable<TaskEntry> agentTasks, Resource r, Dictionary<(string, string), string> usedByPlanned, HashSet<(string, string)> created, string label)
    {
        var id = r.Disk?.Persistence?.Id ?? "";
        if (id.Length == 0)
        {
            throw MasterErrors.InvalidArgument($"{label}: {Describe(r)} has no disk.persistence.id; name the volume to destroy as the offer shows it");
        }
        var role = r.Reservation?.Role ?? "";
        var user = agentTasks.FirstOrDefault(t => t.UsesVolume(id, role));
        if (user is not null || usedByPlanned.ContainsKey((role, id)))
        {
            var task = user?.TaskId ?? usedByPlanned[(role, id)];
            throw MasterErrors.InvalidArgument($"{label}: volume '{id}' is in use by task '{task}'; kill the task and wait for it to end before destroying the volume");
        }
        if (!created.Contains((role, id)) && !agent.Resources.HoldsVolume(id, role))
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

    public static string Describe(Resource r)
    {
        var text = ResourceBag.Format(r);
        var role = r.Reservation is { } res ? $"({res.Role})" : "";
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        text = colon < 0 ? text + role : text[..colon] + role + text[colon..];
        return r.Disk?.Persistence is { Id.Length: > 0 } p ? $"{text}[volume {p.Id}]" : text;
    }

    /// <summary>The operation as the agent gets it: the exact resources before and after.</summary>
    public static Operation AgentOperation(Operation.OperationOneofCase kind, List<Resource> from, List<Resource> to)
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
}
