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
        var errors = new List<string>(0);
        var kinds = new NameKinds();
        var index = 0;
        foreach (var r in resources)
        {
            index++;
            if (r is null)
            {
                errors.Add($"resource #{index} is null");
                continue;
            }

            if (IsPlainlyValid(r))
            {
                // The common case (a finite non-negative unreserved scalar with a plain name) needs
                // no error label; only the one-type-per-name rule is left to check.
                CheckKind(r, index, ref kinds, errors);
                continue;
            }

            ValidateOne(r, Describe(r, index), errors);
            CheckKind(r, index, ref kinds, errors);
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

    private static bool IsPlainlyValid(Resource r) =>
        r.ValueCase == Resource.ValueOneofCase.Scalar
        && r.Scalar >= 0 && r.Scalar <= FixedScalar.MaxValue
        && r.Reservation is null && r.Disk is null
        && r.Name.Length > 0 && ResourceText.InvalidNameChar(r.Name) is null
        && (r.AllocationRole.Length == 0 || RoleName.Validate(r.AllocationRole) is null);

    private static void CheckKind(Resource r, int index, ref NameKinds kinds, List<string> errors)
    {
        if (string.IsNullOrEmpty(r.Name) || r.ValueCase == Resource.ValueOneofCase.None)
        {
            return;
        }

        var kind = kinds.GetOrAdd(r.Name, r.ValueCase);
        if (kind != r.ValueCase)
        {
            errors.Add($"{Describe(r, index)}: '{r.Name}' is used both as {KindName(kind)} and as {KindName(r.ValueCase)}; a resource name has one value type");
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

/// <summary>Name → value type seen first; a few inline slots, a dictionary beyond (resource lists are short).</summary>
internal struct NameKinds
{
    private (string Name, Resource.ValueOneofCase Kind) _a, _b, _c, _d;
    private int _count;
    private Dictionary<string, Resource.ValueOneofCase>? _more;

    public Resource.ValueOneofCase GetOrAdd(string name, Resource.ValueOneofCase kind)
    {
        if (_count > 0 && _a.Name == name)
        {
            return _a.Kind;
        }

        if (_count > 1 && _b.Name == name)
        {
            return _b.Kind;
        }

        if (_count > 2 && _c.Name == name)
        {
            return _c.Kind;
        }

        if (_count > 3 && _d.Name == name)
        {
            return _d.Kind;
        }

        switch (_count)
        {
            case 0: _a = (name, kind); break;
            case 1: _b = (name, kind); break;
            case 2: _c = (name, kind); break;
            case 3: _d = (name, kind); break;
            default:
                _more ??= new Dictionary<string, Resource.ValueOneofCase>(StringComparer.Ordinal);
                if (_more.TryGetValue(name, out var existing))
                {
                    return existing;
                }

                _more.Add(name, kind);
                return kind;
        }

        _count++;
        return kind;
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
