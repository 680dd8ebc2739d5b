using System.Globalization;

namespace Scheduler.Agent;

/// <summary>Parses <c>host:port</c> (IPv6 in brackets).</summary>
internal static class Endpoints
{
    public static bool TryParse(string text, out string host, out int port)
    {
        host = "";
        port = 0;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1)
        {
            return false;
        }
        host = text[..colon].Trim('[', ']');
        return int.TryParse(text[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out port) && port is >= 0 and <= 65535 && host.Length > 0;
    }
}
