using Sched.V1;

namespace Scheduler.Protocol.Resources;

/// <summary>
/// Checks resources before they enter accounting: names, values (finite, non-negative scalars;
/// ranges with begin ≤ end and no overlap; sets without duplicates), reservations and roles, and
/// that a name is used with one value type only. Each error names the resource it is about.
/// </summary>
public static class ResourceValidator
{
    /// <summary>Returns every problem found (empty when valid).</summary>
    public static IReadOnlyList<string> Validate(IEnumerable<Resource> resources)
    {
        ArgumentNullException.ThrowIfNull(resources);
        var errors = new List<string>();
        var kinds = new Dictionary<string, Resource.ValueOneofCase>(StringComparer.Ordinal);
        var index = 0;
        foreach (var r in resources)
        {
            index++;
            if (r is null)
            {
                errors.Add($"resource #{index} is null");
                continue;
            }

            var label = Describe(r, index);
            ValidateOne(r, label, errors);
            if (!string.IsNullOrEmpty(r.Name) && r.ValueCase != Resource.ValueOneofCase.None)
            {
                if (kinds.TryGetValue(r.Name, out var kind) && kind != r.ValueCase)
                {
                    errors.Add($"{label}: '{r.Name}' is used both as {KindName(kind)} and as {KindName(r.ValueCase)}; a resource name has one value type");
                }
                else
                {
                    kinds[r.Name] = r.ValueCase;
                }
            }
        }

        return errors;
    }

    /// <summary>Throws <see cref="InvalidResourceException"/> listing every problem, if any.</summary>
    public static void ThrowIfInvalid(IEnumerable<Resource> resources)
    {
        var errors = Validate(resources);
        if (errors.Count > 0)
        {
            throw new InvalidResourceException(errors);
        }
    }

    internal static string KindName(Resource.ValueOneofCase kind) => kind switch
    {
        Resource.ValueOneofCase.Scalar => "a scalar",
        Resource.ValueOneofCase.Ranges => "ranges",
        Resource.ValueOneofCase.Set => "a set",
        _ => "no value",
    };

    private static string Describe(Resource r, int index)
    {
        var name = string.IsNullOrEmpty(r.Name) ? "(unnamed)" : r.Name;
        var role = r.Reservation is { } res && !string.IsNullOrEmpty(res.Role) ? $"({res.Role})" : "";
        return $"resource #{index} '{name}{role}'";
    }

    private static void ValidateOne(Resource r, string label, List<string> errors)
    {
        if (string.IsNullOrWhiteSpace(r.Name))
        {
            errors.Add($"{label}: the name is empty; use a name such as cpus, mem, disk, ports or gpus");
        }
        else if (ResourceText.InvalidNameChar(r.Name) is { } bad)
        {
            errors.Add($"{label}: the name contains '{bad}'; use letters, digits, '_', '-', '.' or '/'");
        }

        switch (r.ValueCase)
        {
            case Resource.ValueOneofCase.Scalar:
                if (double.IsNaN(r.Scalar))
                {
                    errors.Add($"{label}: the scalar is NaN; give a finite non-negative number");
                }
                else if (double.IsInfinity(r.Scalar))
                {
                    errors.Add($"{label}: the scalar is infinite; give a finite non-negative number");
                }
                else if (r.Scalar < 0)
                {
                    errors.Add($"{label}: the scalar {r.Scalar} is negative; give a non-negative number");
                }
                else if (r.Scalar > FixedScalar.MaxValue)
                {
                    errors.Add($"{label}: the scalar {r.Scalar} is too large (at most {FixedScalar.MaxValue:G})");
                }

                break;
            case Resource.ValueOneofCase.Ranges:
                ValidateRanges(r.Ranges, label, errors);
                break;
            case Resource.ValueOneofCase.Set:
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var item in r.Set.Items)
                {
                    if (string.IsNullOrEmpty(item))
                    {
                        errors.Add($"{label}: the set has an empty item");
                    }
                    else if (!seen.Add(item))
                    {
                        errors.Add($"{label}: the set has '{item}' twice");
                    }
                }

                break;
            default:
                errors.Add($"{label}: no value; set a scalar, ranges or a set");
                break;
        }

        if (r.Reservation is { } reservation)
        {
            if (RoleName.Validate(reservation.Role) is { } roleError)
            {
                errors.Add($"{label}: the reservation is invalid: {roleError}");
            }

            if (reservation.Type == Reservation.Types.Type.Unspecified)
            {
                errors.Add($"{label}: the reservation has no type; use STATIC or DYNAMIC");
            }
        }

        if (!string.IsNullOrEmpty(r.AllocationRole) && RoleName.Validate(r.AllocationRole) is { } allocError)
        {
            errors.Add($"{label}: the allocation role is invalid: {allocError}");
        }

        if (r.Disk is not null && r.Name != "disk")
        {
            errors.Add($"{label}: disk info (persistent volume) is only allowed on 'disk'");
        }
    }

    private static void ValidateRanges(Ranges ranges, string label, List<string> errors)
    {
        if (ranges.Range.Count == 0)
        {
            errors.Add($"{label}: the ranges are empty; give at least one range such as [31000-32000]");
            return;
        }

        var sorted = new List<Sched.V1.Range>(ranges.Range.Count);
        foreach (var range in ranges.Range)
        {
            if (range.Begin > range.End)
            {
                errors.Add($"{label}: range [{range.Begin}-{range.End}] has its begin after its end");
            }
            else
            {
                sorted.Add(range);
            }
        }

        sorted.Sort((a, b) => a.Begin.CompareTo(b.Begin));
        for (var i = 1; i < sorted.Count; i++)
        {
            if (sorted[i].Begin <= sorted[i - 1].End)
            {
                errors.Add($"{label}: ranges [{sorted[i - 1].Begin}-{sorted[i - 1].End}] and [{sorted[i].Begin}-{sorted[i].End}] overlap");
            }
        }
    }
}

/// <summary>Resources failed validation; <see cref="Errors"/> lists each problem.</summary>
public sealed class InvalidResourceException : ArgumentException
{
    public InvalidResourceException(IReadOnlyList<string> errors)
        : base("Invalid resources: " + string.Join("; ", errors)) => Errors = errors;

    public InvalidResourceException()
        : this([]) { }

    public InvalidResourceException(string message)
        : base(message) => Errors = [message];

    public InvalidResourceException(string message, Exception inner)
        : base(message, inner) => Errors = [message];

    public IReadOnlyList<string> Errors { get; }
}
