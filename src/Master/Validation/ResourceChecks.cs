using Sched.V1;

namespace Scheduler.Master.Validation;

/// <summary>Checks of resource values coming from frameworks, agents and operators.</summary>
public static class ResourceChecks
{
    /// <summary>Null when every resource is well-formed (named, with a finite non-negative scalar or
    /// ordered ranges or a set), else a message naming the first bad one.</summary>
    public static string? Validate(IEnumerable<Resource> resources)
    {
        foreach (var r in resources)
        {
            if (string.IsNullOrWhiteSpace(r.Name))
            {
                return "a resource has no name; use cpus, mem, disk, ports or gpus";
            }
            switch (r.ValueCase)
            {
                case Resource.ValueOneofCase.Scalar:
                    if (double.IsNaN(r.Scalar) || double.IsInfinity(r.Scalar))
                    {
                        return $"resource '{r.Name}' has a non-finite value ({r.Scalar}); give a finite number";
                    }
                    if (r.Scalar < 0)
                    {
                        return $"resource '{r.Name}' is negative ({r.Scalar}); give a value >= 0";
                    }
                    break;
                case Resource.ValueOneofCase.Ranges:
                    foreach (var range in r.Ranges.Range)
                    {
                        if (range.Begin > range.End)
                        {
                            return $"resource '{r.Name}' has a range [{range.Begin}-{range.End}] whose begin exceeds its end";
                        }
                    }
                    break;
                case Resource.ValueOneofCase.Set:
                    break;
                default:
                    return $"resource '{r.Name}' has no value; set a scalar, ranges or set";
            }
        }
        return null;
    }
}
