using System.CommandLine;
using Scheduler.Cli.Demo;

namespace Scheduler.Cli.Commands;

/// <summary><c>schedctl demo</c>: the first thing to run.</summary>
public static class DemoCommand
{
    private static readonly Option<bool> Plain = new("--plain") { Description = "Plain line output even on a terminal." };
    private static readonly Option<int> Tasks = new("--tasks") { Description = "Batch tasks to run (default 60).", DefaultValueFactory = _ => 60, Hidden = true };

    public static Command Create()
    {
        var demo = new Command("demo", "Start a local cluster, run a batch and a service framework side by side, show fair sharing live, clean up.");
        demo.Options.Add(Plain);
        demo.Options.Add(Tasks);
        demo.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var interactive = !parse.GetValue(Plain) && ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
            var tasks = parse.GetValue(Tasks);
            if (tasks is < 1 or > 1000)
            {
                throw CliException.BadInput("--tasks must be between 1 and 1000");
            }
            return await new DemoRunner(new DemoSettings(BatchTasks: tasks), output, interactive).RunAsync(ct);
        });
        return demo;
    }
}
