using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Scheduler.Cli.Demo;

/// <summary>Renders demo snapshots: a live Spectre table on a terminal, plain lines otherwise.</summary>
public sealed class DemoView
{
    private readonly TextWriter _out;
    private readonly IAnsiConsole _console;
    private TimeSpan? _lastLine;
    private int _eventsPrinted;

    public DemoView(TextWriter output, bool interactive)
    {
        _out = output;
        Interactive = interactive;
        _console = Output.Console(output);
    }

    public bool Interactive { get; }

    public IAnsiConsole Console => _console;

    public void Step(string text)
    {
        if (Interactive)
        {
            _console.MarkupLine($"[grey]›[/] {Markup.Escape(text)}");
        }
        else
        {
            _out.WriteLine("> " + text);
        }
    }

    /// <summary>Plain mode: prints new events, and a status line every second.</summary>
    public void WritePlain(DemoSnapshot s)
    {
        for (; _eventsPrinted < s.Events.Count; _eventsPrinted++)
        {
            _out.WriteLine($"  [{Seconds(s.Elapsed)}] {s.Events[_eventsPrinted]}");
        }
        if (_lastLine is { } last && s.Elapsed - last < TimeSpan.FromSeconds(1))
        {
            return;
        }
        _lastLine = s.Elapsed;
        var roles = s.Roles.Count == 0 ? "roles: none yet" : string.Join("  ", s.Roles.Select(r => $"{r.Role}: share {Output.Percent(r.DominantShare)}, {r.RunningTasks} running"));
        _out.WriteLine($"  [{Seconds(s.Elapsed)}] {roles} | batch {s.Batch.Finished}/{s.Batch.Total} done | service {s.Service.Running}/{s.Service.Desired} up, {s.Service.Restarts} restart(s)");
    }

    /// <summary>The live view: a table per role plus the framework progress and recent events.</summary>
    public IRenderable Render(DemoSnapshot s)
    {
        var roles = new Table().Border(TableBorder.Rounded).Title($"[bold]cluster[/] [grey](t = {Seconds(s.Elapsed)})[/]");
        roles.AddColumn("role");
        roles.AddColumn("dominant share");
        roles.AddColumn(new TableColumn("running").RightAligned());
        roles.AddColumn("allocated");
        foreach (var r in s.Roles)
        {
            roles.AddRow(new Markup($"[bold]{Markup.Escape(r.Role)}[/]"), ShareBar(r.DominantShare), new Text(r.RunningTasks.ToString(CultureInfo.InvariantCulture)), new Text(r.Allocated));
        }
        if (s.Roles.Count == 0)
        {
            roles.AddRow("[grey]waiting for the master[/]", "", "", "");
        }

        var frameworks = new Table().Border(TableBorder.Rounded).Title("[bold]frameworks[/]");
        frameworks.AddColumn("framework");
        frameworks.AddColumn("progress");
        frameworks.AddColumn("detail");
        frameworks.AddRow(new Markup("[bold]batch[/] (60 short tasks)".Replace("60", s.Batch.Total.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)),
            Progress(s.Batch.Finished, s.Batch.Total, "green"),
            new Text($"{s.Batch.Running} running, {s.Batch.Waiting} waiting, {s.Batch.Failed} failed, {s.Batch.Retries} retried"));
        frameworks.AddRow(new Markup("[bold]service[/] (keeps instances up)"),
            Progress(s.Service.Running, s.Service.Desired, "blue"),
            new Text($"{s.Service.Running}/{s.Service.Desired} running, {s.Service.Restarts} restart(s)"));

        var events = s.Events.Skip(Math.Max(0, s.Events.Count - 6)).Select(e => new Markup($"[grey]•[/] {Markup.Escape(e)}")).ToList<IRenderable>();
        return new Rows(new IRenderable[] { roles, frameworks }.Concat(events));
    }

    private static Markup ShareBar(double share)
    {
        const int Width = 20;
        var filled = (int)Math.Round(Math.Clamp(share, 0, 1) * Width);
        return new Markup($"[green]{new string('█', filled)}[/][grey]{new string('░', Width - filled)}[/] {Output.Percent(share)}");
    }

    private static Markup Progress(int done, int total, string color)
    {
        const int Width = 20;
        var filled = total == 0 ? Width : (int)Math.Round((double)done / total * Width);
        return new Markup($"[{color}]{new string('█', filled)}[/][grey]{new string('░', Width - filled)}[/] {done}/{total}");
    }

    private static string Seconds(TimeSpan t) => t.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + "s";
}
