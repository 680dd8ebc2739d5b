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
    /// <summary>Parses resources with the protocol's parser (<see cref="Scheduler.Protocol.Resources.ResourceText"/>).
    /// Throws <see cref="FormatException"/> naming the bad entry.</summary>
    public static List<Resource> ParseResources(string text)
    {
        // ResourceFormatException is a FormatException naming the entry and the expected syntax.
        return Scheduler.Protocol.Resources.ResourceText.Parse(text ?? "");
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
