using System.CommandLine;
using System.Text.Json.Nodes;
using Grpc.Core;
using Sched.V1;
using Scheduler.FrameworkSdk;
using Scheduler.Protocol;
using Spectre.Console;

namespace Scheduler.Cli.Commands;

/// <summary>
/// <c>schedctl health</c> (every configured master answers for itself) and agent maintenance:
/// <c>schedctl drain AGENT [--kill-tasks]</c>, <c>schedctl reactivate AGENT</c>, <c>schedctl mark-gone AGENT</c>.
/// </summary>
public static class MaintenanceCommands
{
    private static readonly Argument<string> Agent = new("agent") { Description = "The agent id (see 'schedctl agents')." };
    private static readonly Option<bool> KillTasks = new("--kill-tasks") { Description = "Also kill the agent's tasks (their frameworks see TASK_KILLED)." };

    public static IEnumerable<Command> Create()
    {
        var health = new Command("health", "Ask each configured master for its health and role (leader, follower, recovering, standalone); exit 1 if one does not answer or is unhealthy.");
        health.SetAction((p, ct) => HealthAsync(p, ct));
        yield return health;

        var drain = new Command("drain", "Drain an agent: it gets no new offers; with --kill-tasks its tasks are killed too. 'schedctl reactivate' ends it.");
        drain.Arguments.Add(Agent);
        drain.Options.Add(KillTasks);
        drain.SetAction((p, ct) => ClusterCommands.RunAsync(p, DrainAsync, ct));
        yield return drain;

        var reactivate = new Command("reactivate", "End an agent's draining: it gets offers again.");
        reactivate.Arguments.Add(Agent);
        reactivate.SetAction((p, ct) => ClusterCommands.RunAsync(p, ReactivateAsync, ct));
        yield return reactivate;

        var gone = new Command("mark-gone", "Mark an agent gone for good (decommissioned, or lost with its disks): its tasks are reported gone to their frameworks and the agent is never admitted again. Irreversible.");
        gone.Arguments.Add(Agent);
        gone.SetAction((p, ct) => ClusterCommands.RunAsync(p, MarkGoneAsync, ct));
        yield return gone;
    }

    private static async Task<int> HealthAsync(ParseResult parse, CancellationToken ct)
    {
        var masters = GlobalOptions.Masters(parse);
        var output = parse.InvocationConfiguration.Output;
        var json = parse.GetValue(GlobalOptions.Json);
        using var directory = new MasterDirectory(masters, GlobalOptions.ChannelSettings(parse));
        var answers = await Task.WhenAll(masters.Select(m => AskAsync(directory, m, ct)));
        if (json)
        {
            var list = new JsonArray();
            foreach (var (address, response, error) in answers)
            {
                list.Add(new JsonObject
                {
                    ["address"] = address,
                    ["health"] = response is null ? null : JsonNode.Parse(Output.ToJson(response)),
                    ["error"] = error ?? "",
                });
            }
            output.WriteLine(list.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        }
        else
        {
            var table = Output.NewTable("MASTER", "HEALTHY", "ROLE", "VERSION", "UP", "DETAIL");
            foreach (var (address, response, error) in answers)
            {
                if (response is null)
                {
                    table.AddRow(Output.Escape(address), "no", "-", "-", "-", Output.Escape(error ?? ""));
                    continue;
                }
                table.AddRow(Output.Escape(address), response.Healthy ? "yes" : "no", Output.Escape(response.Role), Output.Escape(response.Version),
                    Output.Escape(Uptime(response.UptimeSeconds)), Output.Escape(response.Master is null ? "" : $"id {response.Master.Id}, term {response.Master.Term}"));
            }
            Output.Console(output).Write(table);
        }
        return answers.All(a => a.Response is { Healthy: true }) ? 0 : 1;
    }

    private static async Task<(string Address, GetHealthResponse? Response, string? Error)> AskAsync(MasterDirectory directory, string address, CancellationToken ct)
    {
        try
        {
            var invoker = directory.ChannelFor(address).CreateCallInvoker();
            var options = new CallOptions(deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: ct);
            var response = await invoker.AsyncUnaryCall(OperatorMethods.GetHealth, null, options, new GetHealthRequest());
            return (address, response, null);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Unimplemented)
        {
            return (address, null, "answers gRPC but is not a master (an agent or another service?)");
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
        {
            return (address, null, "no answer: is it running? (" + e.StatusCode + ")");
        }
        catch (RpcException e)
        {
            return (address, null, $"{e.StatusCode}: {e.Status.Detail}");
        }
    }

    private static string Uptime(double seconds)
    {
        var span = TimeSpan.FromSeconds(Math.Max(0, seconds));
        return span.TotalDays >= 1
            ? $"{(int)span.TotalDays}d{span.Hours}h"
            : span.TotalHours >= 1 ? $"{(int)span.TotalHours}h{span.Minutes}m" : $"{span.Minutes}m{span.Seconds}s";
    }

    private static async Task<int> DrainAsync(ClusterCommands.Context c)
    {
        var request = new DrainAgentRequest { AgentId = c.Parse.GetValue(Agent)!, KillTasks = c.Parse.GetValue(KillTasks) };
        var response = await c.Connection.CallAsync(OperatorMethods.DrainAgent, request, c.Cancellation);
        if (!c.Print(response))
        {
            c.Out.WriteLine(request.KillTasks
                ? $"agent {request.AgentId} draining: no new offers, its tasks are being killed; 'schedctl reactivate {request.AgentId}' ends it"
                : $"agent {request.AgentId} draining: no new offers, running tasks keep running; 'schedctl reactivate {request.AgentId}' ends it");
        }
        return 0;
    }

    private static async Task<int> MarkGoneAsync(ClusterCommands.Context c)
    {
        var request = new MarkAgentGoneRequest { AgentId = c.Parse.GetValue(Agent)! };
        var response = await c.Connection.CallAsync(OperatorMethods.MarkAgentGone, request, c.Cancellation);
        if (!c.Print(response))
        {
            c.Out.WriteLine(response.AlreadyGone
                ? $"agent {request.AgentId} was already marked gone; nothing changed"
                : $"agent {request.AgentId} marked gone: {response.TasksGone} task(s) reported gone to their frameworks; the agent is never admitted again (restart that machine's agent with an empty work dir to rejoin as a new agent)");
        }
        return 0;
    }

    private static async Task<int> ReactivateAsync(ClusterCommands.Context c)
    {
        var request = new ReactivateAgentRequest { AgentId = c.Parse.GetValue(Agent)! };
        var response = await c.Connection.CallAsync(OperatorMethods.ReactivateAgent, request, c.Cancellation);
        if (!c.Print(response))
        {
            c.Out.WriteLine($"agent {request.AgentId} active again: it gets offers");
        }
        return 0;
    }
}
