using System.Globalization;
using Sched.V1;
using Scheduler.Protocol.Resources;

namespace Scheduler.Cli;

/// <summary>The command line's resource texts, read with the protocol's one parser
/// (<see cref="Protocol.Resources.ResourceText"/>); its errors become usage errors naming the flag.</summary>
public static class ResourceText
{
    /// <summary>Parses unreserved scalars (<c>cpus:2;mem:1024</c>, as quota guarantees and limits);
    /// a usage error naming <paramref name="source"/> for anything else.</summary>
    public static IEnumerable<Resource> ParseScalars(string? text, string source)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return [];
        }
        var parsed = Parse(text, source);
        foreach (var r in parsed)
        {
            if (r.ValueCase != Resource.ValueOneofCase.Scalar || r.Reservation is not null)
            {
                throw CliException.BadInput($"{source}: '{Protocol.Resources.ResourceText.Format([r])}' is not NAME:QUANTITY (e.g. cpus:2;mem:1024); only unreserved scalar quantities are allowed here");
            }
        }
        return parsed;
    }

    /// <summary>Returns <paramref name="value"/> when a resource can hold it (finite, not negative —
    /// or positive — and at most <see cref="FixedScalar.MaxValue"/>); else a usage error naming
    /// <paramref name="source"/> and the limit.</summary>
    public static double Quantity(double value, string source, bool positive)
    {
        if (!double.IsFinite(value) || value < 0 || (positive && value == 0))
        {
            throw CliException.BadInput($"{source} must be a {(positive ? "positive" : "non-negative")} number (got {value.ToString(CultureInfo.InvariantCulture)})");
        }
        if (value > FixedScalar.MaxValue)
        {
            throw CliException.BadInput($"{source} is larger than the largest quantity a resource can have ({FixedScalar.MaxValue.ToString("G", CultureInfo.InvariantCulture)}; got {value.ToString(CultureInfo.InvariantCulture)})");
        }
        return value;
    }

    /// <summary>Checks a full resource text (<c>cpus:4;mem:4096;ports:[…]</c>, as an agent's
    /// <c>--resources</c>) with the protocol's parser; a usage error naming
    /// <paramref name="source"/> when it is malformed or a quantity is out of range.</summary>
    public static void CheckResources(string? text, string source)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return;
        }
        _ = Parse(text, source);
    }

    private static List<Resource> Parse(string text, string source)
    {
        try
        {
            return Protocol.Resources.ResourceText.Parse(text);
        }
        catch (ResourceFormatException e)
        {
            throw CliException.BadInput($"{source}: {e.Message}");
        }
    }
}
