using System.Globalization;
using System.Text;
using Sched.V1;

namespace Scheduler.Protocol.Resources;

/// <summary>
/// The Mesos text syntax for resources, as agents take it on the command line:
/// <c>cpus:4;mem:4096;disk:10000;ports:[31000-32000];gpus:1;cpus(web):2;zones:{a,b}</c>.
/// <list type="bullet">
/// <item><c>NAME:VALUE</c> entries separated by ';' (whitespace around tokens is ignored);</item>
/// <item>VALUE: a number (scalar), <c>[B-E,B2-E2,…]</c> ranges (a single <c>N</c> means N-N), or <c>{a,b}</c> a set;</item>
/// <item><c>NAME(ROLE)</c> reserves statically for ROLE; <c>NAME(ROLE,dynamic[,PRINCIPAL])</c>
/// describes a dynamic reservation; <c>NAME(*)</c> is unreserved.</item>
/// </list>
/// Entries with the same name and reservation add up. Allocation roles, reservation labels and
/// persistent-volume info have no text form and are not written by <see cref="Format"/>.
/// </summary>
public static class ResourceText
{
    private const string Expected =
        "Expected NAME[(ROLE)]:VALUE entries separated by ';', where VALUE is a number (cpus:4), " +
        "ranges (ports:[31000-32000,33000-34000]) or a set (zones:{a,b}), and ROLE reserves the resource for a role (cpus(web):2).";

    /// <summary>Parses the text into proto resources (not yet merged; see <see cref="ResourceSet.Parse"/>).</summary>
    /// <exception cref="ResourceFormatException">What is wrong, where, and the expected syntax.</exception>
    public static List<Resource> Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var result = new List<Resource>();
        var entries = text.Split(';');
        for (var i = 0; i < entries.Length; i++)
        {
            var entry = entries[i].Trim();
            if (entry.Length == 0)
            {
                if (i == entries.Length - 1 || entries.Length == 1)
                {
                    continue; // trailing ';' or empty text
                }

                throw Error(text, i, entry, "the entry is empty (two ';' in a row)");
            }

            result.Add(ParseEntry(text, i, entry));
        }

        var errors = ResourceValidator.Validate(result);
        if (errors.Count > 0)
        {
            throw new ResourceFormatException($"Invalid resources '{text}': {string.Join("; ", errors)}.");
        }

        return result;
    }

    private static Resource ParseEntry(string text, int index, string entry)
    {
        var colon = entry.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0)
        {
            throw Error(text, index, entry, "there is no ':' between the name and the value");
        }

        var head = entry[..colon].Trim();
        var value = entry[(colon + 1)..].Trim();
        var resource = new Resource();
        var paren = head.IndexOf('(', StringComparison.Ordinal);
        if (paren >= 0)
        {
            if (!head.EndsWith(')'))
            {
                throw Error(text, index, entry, "the role in parentheses is not closed with ')'");
            }

            resource.Reservation = ParseReservation(text, index, entry, head[(paren + 1)..^1]);
            head = head[..paren].Trim();
        }
        else if (head.Contains(')', StringComparison.Ordinal))
        {
            throw Error(text, index, entry, "')' without '('");
        }

        if (head.Length == 0)
        {
            throw Error(text, index, entry, "the name is empty");
        }

        if (InvalidNameChar(head) is { } bad)
        {
            throw Error(text, index, entry, $"the name '{head}' contains '{bad}'");
        }

        resource.Name = head;
        if (value.Length == 0)
        {
            throw Error(text, index, entry, "the value is empty");
        }

        if (value[0] == '[')
        {
            resource.Ranges = ParseRanges(value, problem => Error(text, index, entry, problem));
        }
        else if (value[0] == '{')
        {
            resource.Set = ParseSet(value, problem => Error(text, index, entry, problem));
        }
        else
        {
            if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var scalar))
            {
                throw Error(text, index, entry, $"'{value}' is not a number");
            }

            if (double.IsNaN(scalar) || double.IsInfinity(scalar) || scalar < 0)
            {
                throw Error(text, index, entry, $"'{value}' must be a finite non-negative number");
            }

            if (scalar > FixedScalar.MaxValue)
            {
                throw Error(text, index, entry, $"'{value}' is larger than the largest quantity a resource can have ({FixedScalar.MaxValue:G})");
            }

            resource.Scalar = FixedScalar.Round(scalar);
        }

        return resource;
    }

    private static Reservation? ParseReservation(string text, int index, string entry, string inner)
    {
        var parts = inner.Split(',').Select(p => p.Trim()).ToArray();
        var role = parts[0];
        if (role == RoleName.Any && parts.Length == 1)
        {
            return null;
        }

        if (RoleName.Validate(role) is { } roleError)
        {
            throw Error(text, index, entry, roleError);
        }

        if (parts.Length == 1)
        {
            return new Reservation { Type = Reservation.Types.Type.Static, Role = role };
        }

        if (!parts[1].Equals("dynamic", StringComparison.OrdinalIgnoreCase) || parts.Length > 3)
        {
            throw Error(text, index, entry, $"'({inner})' is not a reservation; use (ROLE) or (ROLE,dynamic[,PRINCIPAL])");
        }

        return new Reservation { Type = Reservation.Types.Type.Dynamic, Role = role, Principal = parts.Length == 3 ? parts[2] : "" };
    }

    internal static Ranges ParseRanges(string value, Func<string, ResourceFormatException> error)
    {
        if (!value.EndsWith(']'))
        {
            throw error("the ranges are not closed with ']'");
        }

        var ranges = new Ranges();
        foreach (var raw in value[1..^1].Split(','))
        {
            var part = raw.Trim();
            if (part.Length == 0)
            {
                throw error("a range is empty; write [BEGIN-END,…]");
            }

            var dash = part.IndexOf('-', StringComparison.Ordinal);
            var beginText = dash < 0 ? part : part[..dash].Trim();
            var endText = dash < 0 ? part : part[(dash + 1)..].Trim();
            if (!ulong.TryParse(beginText, NumberStyles.None, CultureInfo.InvariantCulture, out var begin)
                || !ulong.TryParse(endText, NumberStyles.None, CultureInfo.InvariantCulture, out var end))
            {
                throw error($"'{part}' is not a range of non-negative integers such as 31000-32000");
            }

            if (begin > end)
            {
                throw error($"range '{part}' has its begin after its end");
            }

            ranges.Range.Add(new Sched.V1.Range { Begin = begin, End = end });
        }

        return ranges;
    }

    internal static ValueSet ParseSet(string value, Func<string, ResourceFormatException> error)
    {
        if (!value.EndsWith('}'))
        {
            throw error("the set is not closed with '}'");
        }

        var set = new ValueSet();
        foreach (var raw in value[1..^1].Split(','))
        {
            var item = raw.Trim();
            if (item.Length == 0)
            {
                throw error("a set item is empty; write {a,b}");
            }

            set.Items.Add(item);
        }

        return set;
    }

    internal static char? InvalidNameChar(string name)
    {
        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' or '/'))
            {
                return c;
            }
        }

        return null;
    }

    private static ResourceFormatException Error(string text, int index, string entry, string problem) =>
        new($"Cannot parse resources '{text}': entry {index + 1} '{entry}': {problem}. {Expected}");

    /// <summary>Writes resources in the text syntax (scalars with up to three decimals).</summary>
    public static string Format(IEnumerable<Resource> resources)
    {
        ArgumentNullException.ThrowIfNull(resources);
        var sb = new StringBuilder();
        foreach (var r in resources)
        {
            if (sb.Length > 0)
            {
                sb.Append(';');
            }

            sb.Append(r.Name);
            if (r.Reservation is { } res)
            {
                sb.Append('(').Append(res.Role);
                if (res.Type == Reservation.Types.Type.Dynamic)
                {
                    sb.Append(",dynamic");
                    if (!string.IsNullOrEmpty(res.Principal))
                    {
                        sb.Append(',').Append(res.Principal);
                    }
                }

                sb.Append(')');
            }

            sb.Append(':');
            switch (r.ValueCase)
            {
                case Resource.ValueOneofCase.Scalar:
                    sb.Append(FormatScalar(r.Scalar));
                    break;
                case Resource.ValueOneofCase.Ranges:
                    sb.Append(RangeSet.FromProto(r.Ranges));
                    break;
                case Resource.ValueOneofCase.Set:
                    sb.Append('{').AppendJoin(',', r.Set.Items).Append('}');
                    break;
                default:
                    break;
            }
        }

        return sb.ToString();
    }

    /// <summary>A scalar with up to three decimals, invariant culture (<c>0.5</c>, <c>4096</c>).</summary>
    public static string FormatScalar(double value) => FixedScalar.Round(value).ToString("0.###", CultureInfo.InvariantCulture);
}

/// <summary>Resource text could not be parsed; the message says where, what, and the expected syntax.</summary>
public sealed class ResourceFormatException : FormatException
{
    public ResourceFormatException()
    {
    }

    public ResourceFormatException(string message)
        : base(message)
    {
    }

    public ResourceFormatException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
