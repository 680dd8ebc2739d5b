using System.CommandLine;

namespace Scheduler.Cli;

/// <summary>Options every command understands.</summary>
public static class GlobalOptions
{
    public const string DefaultMaster = "127.0.0.1:5050";

    public static readonly Option<string?> Master = new("--master")
    {
        Description = "Master address(es), host:port[,host:port…]; default $SCHED_MASTER, else " + DefaultMaster + ". The CLI follows the leader.",
        Recursive = true,
    };

    public static readonly Option<bool> Json = new("--json")
    {
        Description = "Print JSON (for scripts) instead of tables.",
        Recursive = true,
    };

    public static readonly Option<string?> TokenFile = new("--token-file")
    {
        Description = "File holding the bearer token to present; default $SCHED_TOKEN (the token itself).",
        Recursive = true,
    };

    /// <summary>The token to present: the file of <c>--token-file</c>, else <c>SCHED_TOKEN</c>, else none.</summary>
    /// <exception cref="CliException">When the token file cannot be read.</exception>
    public static string? Token(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        if (parse.GetValue(TokenFile) is { Length: > 0 } path)
        {
            try
            {
                return Scheduler.Channels.GrpcChannels.ReadTokenFile(path);
            }
            catch (InvalidOperationException e)
            {
                throw CliException.BadInput($"--token-file: {e.Message}");
            }
        }
        return Environment.GetEnvironmentVariable("SCHED_TOKEN") is { Length: > 0 } token ? token.Trim() : null;
    }

    /// <summary>Channel settings for every call this command makes (credentials included).</summary>
    public static Scheduler.Channels.GrpcChannelSettings ChannelSettings(ParseResult parse)
        => new() { BearerToken = Token(parse) };

    /// <summary>The masters to talk to: <c>--master</c>, else <c>SCHED_MASTER</c>, else the default.</summary>
    public static IReadOnlyList<string> Masters(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var text = parse.GetValue(Master);
        var source = "--master";
        if (string.IsNullOrWhiteSpace(text))
        {
            text = Environment.GetEnvironmentVariable("SCHED_MASTER");
            source = "SCHED_MASTER";
        }
        if (string.IsNullOrWhiteSpace(text))
        {
            return [DefaultMaster];
        }
        return Addresses.ParseList(text, source);
    }
}
