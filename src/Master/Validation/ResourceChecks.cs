using Sched.V1;
using Scheduler.Protocol.Resources;

namespace Scheduler.Master.Validation;

/// <summary>Checks of resource values coming from frameworks, agents and operators.</summary>
public static class ResourceChecks
{
    /// <summary>Null when every resource is well-formed (finite non-negative scalars, ordered
    /// ranges…), else the problems found, joined.</summary>
    public static string? Validate(IEnumerable<Resource> resources)
    {
        var errors = ResourceValidator.Validate(resources);
        return errors.Count == 0 ? null : string.Join("; ", errors);
    }
}
