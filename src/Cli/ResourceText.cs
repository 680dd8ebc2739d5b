using System.Globalization;
using Sched.V1;

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
            result.Add(new Resource { Name = part[..colon].Trim(), Scalar = value });
        }
        return result;
    }
}
