using System.Globalization;
using Sched.V1;
using Scheduler.Protocol.Resources;

namespace Scheduler.Cli;

/// <summary>Parses the scalar part of the Mesos resource syntax given on the command line
/// (<c>cpus:2;mem:1024</c>).</summary>
public static class ResourceText
{
    public static IEnumerable<Resource> ParseScalars(string? text, string source)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return [];
        }
        var result = new List<Resource>();
        foreach (var part in text.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var colon = part.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || !double.TryParse(part.AsSpan(colon + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value < 0 || !double.IsFinite(value))
            {
                throw CliException.BadInput($"{source}: '{part}' is not NAME:QUANTITY (e.g. cpus:2;mem:1024)");
            }
            result.Add(new Resource { Name = part[..colon].Trim(), Scalar = Quantity(value, $"{source} '{part}'", positive: false) });
        }
        return result;
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
        try
        {
            _ = Protocol.Resources.ResourceText.Parse(text);
        }
        catch (ResourceFormatException e)
        {
            throw CliException.BadInput($"{source}: {e.Message}");
        }
    }
}
