using System.Globalization;
using Sched.V1;

namespace Scheduler.Protocol.Resources;

/// <summary>
/// The Mesos text syntax for agent attributes, as agents take it on the command line:
/// <c>rack:r1;level:3;zones:{a,b};slots:[1-4]</c>. Entries are <c>NAME:VALUE</c> separated by
/// ';'; a VALUE is ranges (<c>[B-E,…]</c>) or a set (<c>{a,b}</c>) written as in
/// <see cref="ResourceText"/> (the same grammar, the same errors), a number (a scalar), or else text.
/// </summary>
public static class AttributeText
{
    private const string Expected =
        "Expected NAME:VALUE entries separated by ';', where VALUE is text (rack:r1), a number (level:3), " +
        "ranges (slots:[1-4]) or a set (zones:{a,b}).";

    /// <summary>Parses the text into attributes, in order.</summary>
    /// <exception cref="ResourceFormatException">What is wrong, where, and the expected syntax.</exception>
    public static List<Sched.V1.Attribute> Parse(string? text)
    {
        var list = new List<Sched.V1.Attribute>();
        if (string.IsNullOrWhiteSpace(text))
        {
            return list;
        }

        var entries = text.Split(';');
        for (var i = 0; i < entries.Length; i++)
        {
            var entry = entries[i].Trim();
            var index = i;
            if (entry.Length == 0)
            {
                continue;
            }

            var colon = entry.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                throw Error(text, i, entry, "it is not NAME:VALUE (e.g. rack:r1)");
            }

            var name = entry[..colon].Trim();
            if (ResourceText.InvalidNameChar(name) is { } bad)
            {
                throw Error(text, i, entry, $"the name '{name}' contains '{bad}'");
            }

            var value = entry[(colon + 1)..].Trim();
            var attribute = new Sched.V1.Attribute { Name = name };
            if (value.StartsWith('['))
            {
                attribute.Ranges = ResourceText.ParseRanges(value, problem => Error(text, index, entry, problem));
            }
            else if (value.StartsWith('{'))
            {
                attribute.Set = ResourceText.ParseSet(value, problem => Error(text, index, entry, problem));
            }
            else if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var scalar) && double.IsFinite(scalar))
            {
                attribute.Scalar = scalar;
            }
            else if (value.Length == 0)
            {
                throw Error(text, i, entry, "the value is empty");
            }
            else
            {
                attribute.Text = value;
            }

            list.Add(attribute);
        }

        return list;
    }

    /// <summary>Writes attributes in the syntax <see cref="Parse"/> reads (<c>rack:r1;level:3</c>).</summary>
    public static string Format(IEnumerable<Sched.V1.Attribute> attributes)
    {
        ArgumentNullException.ThrowIfNull(attributes);
        return string.Join(';', attributes.Select(a => a.Name + ":" + a.ValueCase switch
        {
            Sched.V1.Attribute.ValueOneofCase.Scalar => ResourceText.FormatScalar(a.Scalar),
            Sched.V1.Attribute.ValueOneofCase.Ranges => RangeSet.FromProto(a.Ranges).ToString(),
            Sched.V1.Attribute.ValueOneofCase.Set => "{" + string.Join(',', a.Set.Items) + "}",
            _ => a.Text,
        }));
    }

    private static ResourceFormatException Error(string text, int index, string entry, string problem) =>
        new($"Cannot parse attributes '{text}': entry {index + 1} '{entry}': {problem}. {Expected}");
}
