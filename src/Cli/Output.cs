using System.Globalization;
using Google.Protobuf;
using Sched.V1;
using Scheduler.FrameworkSdk;
using Spectre.Console;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Cli;

/// <summary>How the CLI prints: Spectre tables for people, protobuf JSON for scripts.</summary>
public static class Output
{
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(true).WithIndentation());

    public static string ToJson(IMessage message) => Formatter.Format(message);

    public static void WriteJson(TextWriter writer, IMessage message)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteLine(ToJson(message));
    }

    /// <summary>A console that writes to <paramref name="writer"/>; plain when it is not a terminal.</summary>
    public static IAnsiConsole Console(TextWriter writer)
    {
        var interactive = ReferenceEquals(writer, System.Console.Out) && !System.Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = interactive ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = interactive ? InteractionSupport.Detect : InteractionSupport.No,
        });
        if (!interactive)
        {
            // Pipes and files: do not wrap tables at 80 columns.
            console.Profile.Width = 250;
        }
        return console;
    }

    public static Table NewTable(params string[] columns)
    {
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var c in columns)
        {
            table.AddColumn(new TableColumn(c));
        }
        return table;
    }

    public static string Resources(IEnumerable<Resource> resources)
    {
        var list = resources.ToList();
        return list.Count == 0 ? "-" : OfferResources.Describe(list);
    }

    public static string Number(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);

    public static string Percent(double share) => (share * 100).ToString("0.0", CultureInfo.InvariantCulture) + "%";

    public static string Time(double unixSeconds) => unixSeconds <= 0
        ? "-"
        : DateTimeOffset.FromUnixTimeMilliseconds((long)(unixSeconds * 1000)).ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);

    public static string State(TaskState state) => state.ShortName();

    public static string TaskDetail(TaskStatus? status)
    {
        if (status is null)
        {
            return "";
        }
        var parts = new List<string>();
        if (status.HasExitCode)
        {
            parts.Add("exit " + status.ExitCode.ToString(CultureInfo.InvariantCulture));
        }
        if (status.Reason != TaskStatus.Types.Reason.Unspecified)
        {
            parts.Add(status.Reason.ToString());
        }
        if (!string.IsNullOrWhiteSpace(status.Message))
        {
            parts.Add(status.Message);
        }
        return string.Join("; ", parts);
    }

    public static string Escape(string text) => Markup.Escape(text ?? "");
}
