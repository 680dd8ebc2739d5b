using System.Globalization;
using Sched.V1;

namespace Scheduler.Agent.Resources;

/// <summary>
/// Parses the Mesos text forms of resources (<c>cpus:4;mem:4096;ports:[31000-32000]</c>,
/// <c>cpus(web):2</c> for a static reservation, <c>{a,b}</c> sets) and attributes
/// (<c>rack:r1;zone:a</c>).
/// </summary>
public static class ResourceText
{
    /// <summary>Parses resources. Throws <see cref="FormatException"/> naming the bad entry.</summary>
    public static List<Resource> ParseResources(string text)
    {
        var list = new List<Resource>();
        foreach (var raw in Split(text))
        {
            var colon = raw.IndexOf(':');
            if (colon <= 0)
            {
                throw new FormatException($"Resource '{raw}' is not NAME:VALUE or NAME(ROLE):VALUE (e.g. cpus:4, mem(web):1024, ports:[31000-32000]).");
            }
            var name = raw[..colon].Trim();
            var valueText = raw[(colon + 1)..].Trim();
            string? role = null;
            var paren = name.IndexOf('(');
            if (paren >= 0)
            {
                if (!name.EndsWith(')'))
                {
                    throw new FormatException($"Resource '{raw}': the role must be written NAME(ROLE).");
                }
                role = name[(paren + 1)..^1].Trim();
                name = name[..paren].Trim();
                if (role.Length == 0)
                {
                    throw new FormatException($"Resource '{raw}': empty role in parentheses.");
                }
            }
            if (name.Length == 0)
            {
                throw new FormatException($"Resource '{raw}' has no name.");
            }
            var resource = new Resource { Name = name };
            if (valueText.StartsWith('['))
            {
                resource.Ranges = ParseRanges(valueText, raw);
            }
            else if (valueText.StartsWith('{'))
            {
                if (!valueText.EndsWith('}'))
                {
                    throw new FormatException($"Resource '{raw}': a set must be written {{a,b,c}}.");
                }
                resource.Set = new ValueSet();
                resource.Set.Items.AddRange(valueText[1..^1].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            }
            else
            {
                if (!double.TryParse(valueText, NumberStyles.Float, CultureInfo.InvariantCulture, out var scalar) || !double.IsFinite(scalar) || scalar < 0)
                {
                    throw new FormatException($"Resource '{raw}': '{valueText}' is not a non-negative number.");
                }
                resource.Scalar = Math.Round(scalar, 3);
            }
            if (role is not null && role != "*")
            {
                resource.Reservation = new Reservation { Type = Reservation.Types.Type.Static, Role = role };
            }
            list.Add(resource);
        }
        return list;
    }

    /// <summary>Parses attributes; numbers become scalars, <c>[a-b]</c> ranges, <c>{x,y}</c> sets, the rest text.</summary>
    public static List<Attribute> ParseAttributes(string text)
    {
        var list = new List<Attribute>();
        foreach (var raw in Split(text))
        {
            var colon = raw.IndexOf(':');
            if (colon <= 0)
            {
                throw new FormatException($"Attribute '{raw}' is not NAME:VALUE (e.g. rack:r1).");
            }
            var name = raw[..colon].Trim();
            var value = raw[(colon + 1)..].Trim();
            var attribute = new Attribute { Name = name };
            if (value.StartsWith('['))
            {
                attribute.Ranges = ParseRanges(value, raw);
            }
            else if (value.StartsWith('{') && value.EndsWith('}'))
            {
                attribute.Set = new ValueSet();
                attribute.Set.Items.AddRange(value[1..^1].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            }
            else if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var scalar) && double.IsFinite(scalar))
            {
                attribute.Scalar = scalar;
            }
            else
            {
                attribute.Text = value;
            }
            list.Add(attribute);
        }
        return list;
    }

    /// <summary>The total scalar of a resource name (all roles), or 0.</summary>
    public static double Scalar(IEnumerable<Resource> resources, string name)
        => resources.Where(r => r.Name == name && r.ValueCase == Resource.ValueOneofCase.Scalar).Sum(r => r.Scalar);

    private static IEnumerable<string> Split(string text)
        => (text ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static Ranges ParseRanges(string value, string raw)
    {
        if (!value.EndsWith(']'))
        {
            throw new FormatException($"'{raw}': ranges must be written [BEGIN-END,BEGIN-END].");
        }
        var ranges = new Ranges();
        foreach (var part in value[1..^1].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var dash = part.IndexOf('-');
            var beginText = dash < 0 ? part : part[..dash];
            var endText = dash < 0 ? part : part[(dash + 1)..];
            if (!ulong.TryParse(beginText.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var begin)
                || !ulong.TryParse(endText.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var end)
                || end < begin)
            {
                throw new FormatException($"'{raw}': '{part}' is not a range BEGIN-END with BEGIN <= END.");
            }
            ranges.Range.Add(new Sched.V1.Range { Begin = begin, End = end });
        }
        return ranges;
    }
}
