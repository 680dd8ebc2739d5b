using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace Scheduler.Cli.Daemons;

/// <summary>Options of <see cref="DaemonConsoleFormatter"/>.</summary>
public sealed class DaemonConsoleFormatterOptions : ConsoleFormatterOptions
{
    /// <summary>Print exceptions with their stack (<c>--verbose</c>); otherwise type and message only.</summary>
    public bool Verbose { get; set; }
}

/// <summary>
/// One line per event for the master and agent daemons: a UTC timestamp (ISO 8601, ms), the
/// level, the category and the message; an exception as <c>(Type: message)</c> on the same line,
/// or with its stack under <c>--verbose</c>.
/// </summary>
public sealed class DaemonConsoleFormatter(Microsoft.Extensions.Options.IOptionsMonitor<DaemonConsoleFormatterOptions> options)
    : ConsoleFormatter(FormatterName)
{
    public const string FormatterName = "daemon";

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        var message = logEntry.Formatter?.Invoke(logEntry.State, logEntry.Exception);
        if (message is null && logEntry.Exception is null)
        {
            return;
        }
        textWriter.Write(DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture));
        textWriter.Write(' ');
        textWriter.Write(Level(logEntry.LogLevel));
        textWriter.Write(' ');
        textWriter.Write(logEntry.Category);
        textWriter.Write(": ");
        textWriter.Write(message?.ReplaceLineEndings(" "));
        if (logEntry.Exception is { } e)
        {
            textWriter.Write(options.CurrentValue.Verbose
                ? Environment.NewLine + e
                : $" ({e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}; --verbose shows the stack)");
        }
        textWriter.Write(Environment.NewLine);
    }

    private static string Level(LogLevel level) => level switch
    {
        LogLevel.Trace => "trce",
        LogLevel.Debug => "dbug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "fail",
        LogLevel.Critical => "crit",
        _ => "none",
    };
}

/// <summary>How the daemons log: <see cref="DaemonConsoleFormatter"/> on stderr, information and
/// above; the generic host's own failure reports (which repeat, with stacks, what the daemon
/// reports in one line) only under <c>--verbose</c>.</summary>
public static class DaemonLogging
{
    public static void Configure(ILoggingBuilder logging, bool verbose)
    {
        ArgumentNullException.ThrowIfNull(logging);
        logging.ClearProviders();
        logging.AddConsole(o =>
        {
            o.FormatterName = DaemonConsoleFormatter.FormatterName;
            o.LogToStandardErrorThreshold = LogLevel.Trace;
        });
        logging.AddConsoleFormatter<DaemonConsoleFormatter, DaemonConsoleFormatterOptions>(o => o.Verbose = verbose);
        logging.SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Information);
        if (!verbose)
        {
            logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.None);
        }
    }

    /// <summary>A logger factory configured as <see cref="Configure"/> does (for the agent).</summary>
    public static ILoggerFactory CreateFactory(bool verbose) => LoggerFactory.Create(b => Configure(b, verbose));
}
