using System.CommandLine;

namespace Scheduler.Cli.Commands;

/// <summary><c>schedctl demo</c>.</summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var demo = new Command("demo", "Start a local cluster, run two frameworks side by side, show fair sharing live, clean up.");
        demo.SetAction((p, ct) => Task.FromResult(0));
        return demo;
    }
}
