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
