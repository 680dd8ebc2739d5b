namespace Scheduler.Rpc.Internal;

/// <summary>
/// Maps <see cref="Metadata"/> to HTTP/2 header fields and back: <c>-bin</c> values are base64
/// (padding optional on receipt), reserved gRPC and transport headers are not metadata.
/// </summary>
internal static class MetadataCodec
{
    /// <summary>True for header names that belong to the transport or gRPC itself.</summary>
    public static bool IsReserved(string name)
    {
        if (name.Length == 0 || name[0] == ':')
        {
            return true;
        }
        if (name.StartsWith("grpc-", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }
        return name.Equals("content-type", StringComparison.OrdinalIgnoreCase)
            || name.Equals("te", StringComparison.OrdinalIgnoreCase)
            || name.Equals("host", StringComparison.OrdinalIgnoreCase)
            || name.Equals("content-length", StringComparison.OrdinalIgnoreCase)
            || name.Equals("connection", StringComparison.OrdinalIgnoreCase)
            || name.Equals("transfer-encoding", StringComparison.OrdinalIgnoreCase)
            || name.Equals("keep-alive", StringComparison.OrdinalIgnoreCase)
            || name.Equals("upgrade", StringComparison.OrdinalIgnoreCase)
            || name.Equals("accept-encoding", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The header value of an entry (base64 for binary keys).</summary>
    public static string ToHeaderValue(Metadata.Entry entry)
        => entry.IsBinary ? Convert.ToBase64String(entry.ValueBytes) : entry.Value;

    /// <summary>Adds one received header to <paramref name="metadata"/>; skips reserved, invalid or
    /// undecodable ones (a peer's bad metadata must not fail the call).</summary>
    public static void AddReceived(Metadata metadata, string name, string? value)
    {
        if (value is null || IsReserved(name) || !IsValidKey(name))
        {
            return;
        }
        var key = name.ToLowerInvariant();
        if (Metadata.Entry.IsBinaryKey(key))
        {
            // A binary header may hold several comma-separated base64 values.
            foreach (var part in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var bytes = DecodeBase64(part);
                if (bytes is not null)
                {
                    metadata.Add(key, bytes);
                }
            }
            if (value.Length == 0)
            {
                metadata.Add(key, []);
            }
            return;
        }
        foreach (var c in value)
        {
            if (c is < ' ' or > '~')
            {
                return;
            }
        }
        metadata.Add(key, value);
    }

    private static bool IsValidKey(string name)
    {
        foreach (var c in name)
        {
            if (!(c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '-' or '_' or '.'))
            {
                return false;
            }
        }
        return true;
    }

    private static byte[]? DecodeBase64(string text)
    {
        var padded = (text.Length % 4) switch
        {
            2 => text + "==",
            3 => text + "=",
            _ => text,
        };
        try
        {
            return Convert.FromBase64String(padded);
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
