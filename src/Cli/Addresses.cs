using System.Globalization;

namespace Scheduler.Cli;

/// <summary>Parsing of <c>host:port</c> addresses given on the command line.</summary>
public static class Addresses
{
    /// <summary>Parses a comma-separated list of <c>host:port</c>; usage error naming
    /// <paramref name="source"/> when one is malformed.</summary>
    public static IReadOnlyList<string> ParseList(string text, string source)
    {
        ArgumentNullException.ThrowIfNull(text);
        var list = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        if (list.Count == 0)
        {
            throw CliException.BadInput($"{source} is empty; give host:port[,host:port…]");
        }
        foreach (var address in list)
        {
            Validate(address, source, allowPortZero: false);
        }
        return list;
    }

    /// <summary>Checks one <c>host:port</c>.</summary>
    public static string Validate(string address, string source, bool allowPortZero)
    {
        ArgumentNullException.ThrowIfNull(address);
        var text = address.Contains("://", StringComparison.Ordinal) ? address[(address.IndexOf("://", StringComparison.Ordinal) + 3)..] : address;
        var colon = text.LastIndexOf(':');
        var min = allowPortZero ? 0 : 1;
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port < min || port > 65535)
        {
            throw CliException.BadInput($"{source}: '{address}' is not host:port (e.g. 127.0.0.1:5050)");
        }
        return address;
    }
}
