namespace Scheduler.Channels.Tls;

/// <summary>A certificate, key or CA file is missing or does not load; the message names the file
/// and what to do.</summary>
public sealed class TlsFileException : Exception
{
    public TlsFileException(string message)
        : base(message)
    {
    }

    public TlsFileException(string message, Exception inner)
        : base(message, inner)
    {
    }

    internal static void RequireFile(string path, string what)
    {
        if (!File.Exists(path))
        {
            throw new TlsFileException($"the {what} file {path} does not exist");
        }
    }
}
