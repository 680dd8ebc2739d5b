using System.CommandLine;
using Sched.V1;
using Scheduler.Protocol;

namespace Scheduler.Cli.Commands;

/// <summary><c>schedctl kill TASK</c>: an operator kill (the framework sees TASK_KILLED).</summary>
public static class KillCommand
{
    private static readonly Argument<string> TaskId = new("task") { Description = "The task id." };
    private static readonly Option<string?> Framework = new("--framework") { Description = "The task's framework id (when several frameworks use the same task id)." };
    private static readonly Option<double?> Grace = new("--grace") { Description = "Seconds between SIGTERM and SIGKILL (default: the task's kill policy)." };

    public static Command Create()
    {
        var command = new Command("kill", "Kill a task (SIGTERM, then SIGKILL after its grace period).");
        command.Arguments.Add(TaskId);
        command.Options.Add(Framework);
        command.Options.Add(Grace);
        command.SetAction((p, ct) => ClusterCommands.RunAsync(p, RunAsync, ct));
        return command;
    }

    private static async Task<int> RunAsync(ClusterCommands.Context c)
    {
        var request = new KillTaskRequest { TaskId = c.Parse.GetValue(TaskId)!, FrameworkId = c.Parse.GetValue(Framework) ?? "" };
        if (c.Parse.GetValue(Grace) is { } grace)
        {
            if (!(grace >= 0) || !double.IsFinite(grace))
            {
                throw CliException.BadInput("--grace must be a number of seconds >= 0");
            }
            request.KillPolicy = new KillPolicy { GracePeriodSeconds = grace };
        }
        var response = await c.Connection.CallAsync(OperatorMethods.KillTask, request, c.Cancellation);
        if (!c.Print(response))
        {
            c.Out.WriteLine($"kill sent to task {request.TaskId} (framework {response.FrameworkId}, agent {response.AgentId}); 'schedctl tasks --all' shows its end");
        }
        return 0;
    }
}
