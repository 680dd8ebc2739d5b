using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using Sched.V1;
using Scheduler.FrameworkSdk;
using Scheduler.Protocol;

namespace Scheduler.Cli.Commands;

/// <summary>
/// <c>schedctl describe task|agent|framework ID</c> (everything the master knows of one object)
/// and <c>schedctl events</c> (the operator event stream, one line per event).
/// </summary>
public static class InspectCommands
{
    private static readonly Argument<string> Id = new("id") { Description = "The object's id." };
    private static readonly Option<string?> Framework = new("--framework") { Description = "The task's framework id (when several frameworks use the same task id)." };

    public static IEnumerable<Command> Create()
    {
        var describe = new Command("describe", "Show everything the master knows of one task, agent or framework.");
        var task = new Command("task", "Describe a task (live or completed).");
        task.Arguments.Add(Id);
        task.Options.Add(Framework);
        task.SetAction((p, ct) => ClusterCommands.RunAsync(p, DescribeTaskAsync, ct));
        var agent = new Command("agent", "Describe an agent and its tasks.");
        agent.Arguments.Add(Id);
        agent.SetAction((p, ct) => ClusterCommands.RunAsync(p, DescribeAgentAsync, ct));
        var framework = new Command("framework", "Describe a framework and its tasks.");
        framework.Arguments.Add(Id);
        framework.SetAction((p, ct) => ClusterCommands.RunAsync(p, DescribeFrameworkAsync, ct));
        describe.Subcommands.Add(task);
        describe.Subcommands.Add(agent);
        describe.Subcommands.Add(framework);
        yield return describe;

        var events = new Command("events", "Follow the cluster's events (tasks, agents, frameworks) until Ctrl-C; --json prints one JSON object per line.");
        events.SetAction((p, ct) => ClusterCommands.RunAsync(p, FollowEventsAsync, ct));
        yield return events;
    }

    private static async Task<int> DescribeTaskAsync(ClusterCommands.Context c)
    {
        var id = c.Parse.GetValue(Id)!;
        var request = new GetTasksRequest { TaskId = id, FrameworkId = c.Parse.GetValue(Framework) ?? "", IncludeCompleted = true };
        var tasks = (await Pages.AllAsync(request, r => c.Connection.CallAsync(OperatorMethods.GetTasks, r, c.Cancellation))).Tasks;
        if (tasks.Count == 0)
        {
            throw new CliException($"no task '{id}' is known to the master ('schedctl tasks --all' lists them)");
        }
        if (tasks.Count > 1)
        {
            throw CliException.BadInput($"{tasks.Count} frameworks have a task '{id}' ({string.Join(", ", tasks.Select(t => t.FrameworkId))}); add --framework ID");
        }
        var t = tasks[0];
        if (c.Print(t))
        {
            return 0;
        }
        var rows = new List<(string, string)>
        {
            ("task", t.TaskId),
            ("name", t.Name),
            ("framework", t.FrameworkId),
            ("role", t.Role),
            ("agent", t.AgentId),
            ("state", Output.State(t.State)),
            ("detail", Output.TaskDetail(t.Status)),
            ("healthy", t.Status is { HasHealthy: true } s ? (s.Healthy ? "yes" : "no") : "-"),
            ("updated", t.Status is null ? "-" : Output.Time(t.Status.Timestamp)),
            ("acknowledged", t.StatusAcknowledged ? "yes" : "no"),
            ("resources", Output.Resources(t.Resources)),
            ("container", t.ContainerType.ToString()),
        };
        if (t.Info is { } info)
        {
            if (info.Command is { } command)
            {
                rows.Add(("command", command.Shell ? command.Value : string.Join(' ', new[] { command.Value }.Concat(command.Arguments))));
                rows.Add(("user", command.User.Length == 0 ? "-" : command.User));
                rows.Add(("env", command.Env.Count == 0 ? "-" : string.Join(", ", command.Env.Keys.Order(StringComparer.Ordinal))));
            }
            if (info.Container?.Oci is { } oci)
            {
                rows.Add(("image", oci.Image));
            }
        }
        foreach (var label in t.Labels.OrderBy(l => l.Key, StringComparer.Ordinal))
        {
            rows.Add(("label " + label.Key, label.Value));
        }
        Write(c, rows);
        return 0;
    }

    private static async Task<int> DescribeAgentAsync(ClusterCommands.Context c)
    {
        var id = c.Parse.GetValue(Id)!;
        var agents = await Pages.AllAsync(new GetAgentsRequest(), r => c.Connection.CallAsync(OperatorMethods.GetAgents, r, c.Cancellation));
        var a = agents.Agents.FirstOrDefault(x => x.Info.Id == id)
            ?? throw new CliException($"no agent '{id}' is known to the master ('schedctl agents' lists them)");
        var tasks = (await Pages.AllAsync(new GetTasksRequest { AgentId = id }, r => c.Connection.CallAsync(OperatorMethods.GetTasks, r, c.Cancellation))).Tasks;
        if (c.Json)
        {
            var both = new GetStateResponse();
            both.Agents.Add(a);
            both.Tasks.Add(tasks);
            c.Print(both);
            return 0;
        }
        var rows = new List<(string, string)>
        {
            ("agent", a.Info.Id),
            ("host", a.Info.Hostname),
            ("address", a.Info.Address),
            ("status", a.Status.ToString()),
            ("version", a.Info.Version),
            ("registered", Output.Time(a.RegisteredTime)),
            ("last heartbeat", Output.Time(a.LastHeartbeatTime)),
            ("total", Output.Resources(a.Total)),
            ("allocated", Output.Resources(a.Allocated)),
            ("offered", Output.Resources(a.Offered)),
            ("available", Output.Resources(a.Available)),
            ("attributes", a.Info.Attributes.Count == 0 ? "-" : Protocol.Resources.AttributeText.Format(a.Info.Attributes)),
            ("tasks", tasks.Count == 0 ? "-" : string.Join(", ", tasks.Select(t => $"{t.TaskId} ({Output.State(t.State)}, {t.FrameworkId})"))),
        };
        Write(c, rows);
        return 0;
    }

    private static async Task<int> DescribeFrameworkAsync(ClusterCommands.Context c)
    {
        var id = c.Parse.GetValue(Id)!;
        var frameworks = await c.Connection.CallAsync(OperatorMethods.GetFrameworks, new GetFrameworksRequest(), c.Cancellation);
        var f = frameworks.Frameworks.FirstOrDefault(x => x.Info.Id == id)
            ?? throw new CliException($"no framework '{id}' is known to the master ('schedctl frameworks' lists them)");
        var tasks = (await Pages.AllAsync(new GetTasksRequest { FrameworkId = id }, r => c.Connection.CallAsync(OperatorMethods.GetTasks, r, c.Cancellation))).Tasks;
        if (c.Json)
        {
            var both = new GetStateResponse();
            both.Frameworks.Add(f);
            both.Tasks.Add(tasks);
            c.Print(both);
            return 0;
        }
        var rows = new List<(string, string)>
        {
            ("framework", f.Info.Id),
            ("name", f.Info.Name),
            ("principal", f.Info.Principal.Length == 0 ? "-" : f.Info.Principal),
            ("user", f.Info.User.Length == 0 ? "-" : f.Info.User),
            ("roles", string.Join(", ", f.Info.Roles)),
            ("suppressed roles", f.SuppressedRoles.Count == 0 ? "-" : string.Join(", ", f.SuppressedRoles)),
            ("connected", f.Connected ? "yes" : "no"),
            ("registered", Output.Time(f.RegisteredTime)),
            ("failover timeout", Output.Number(f.Info.FailoverTimeoutSeconds) + " s"),
            ("torn down at", f.Connected ? "-" : Output.Time(f.FailoverDeadline)),
            ("allocated", Output.Resources(f.Allocated)),
            ("offered", Output.Resources(f.Offered)),
            ("tasks", $"{f.RunningTasks.ToString(CultureInfo.InvariantCulture)} running, {f.FinishedTasks.ToString(CultureInfo.InvariantCulture)} finished, {f.FailedTasks.ToString(CultureInfo.InvariantCulture)} failed"),
            ("live tasks", tasks.Count == 0 ? "-" : string.Join(", ", tasks.Select(t => $"{t.TaskId} ({Output.State(t.State)}, {t.AgentId})"))),
        };
        Write(c, rows);
        return 0;
    }

    /// <summary>Follows the operator stream on the leader; ends on Ctrl-C, or with an error when the
    /// master goes away (the stream is not resumed: events in between would be lost silently).</summary>
    private static async Task<int> FollowEventsAsync(ClusterCommands.Context c)
    {
        // One unary call first: finds the leader (following redirects) with the usual errors.
        await c.Connection.CallAsync(OperatorMethods.GetLeader, new GetLeaderRequest(), c.Cancellation);
        var invoker = c.Connection.Directory.ChannelFor(c.Connection.Current).CreateCallInvoker();
        using var call = invoker.AsyncServerStreamingCall(OperatorMethods.Subscribe, null, new CallOptions(cancellationToken: c.Cancellation), new OperatorSubscribeRequest());
        try
        {
            await foreach (var e in call.ResponseStream.ReadAllAsync(c.Cancellation))
            {
                if (c.Json)
                {
                    c.Out.WriteLine(Google.Protobuf.JsonFormatter.Default.Format(e));
                }
                else if (Line(e) is { } line)
                {
                    c.Out.WriteLine($"{DateTimeOffset.Now.ToString("HH:mm:ss", CultureInfo.InvariantCulture)}  {line}");
                }
                await c.Out.FlushAsync(c.Cancellation);
            }
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && c.Cancellation.IsCancellationRequested)
        {
            return 0;
        }
        catch (RpcException e)
        {
            throw MasterConnection.Describe(OperatorMethods.Subscribe, e);
        }
        throw new CliException($"the master at {c.Connection.Current} ended the event stream (failover or shutdown); run 'schedctl events' again");
    }

    /// <summary>One human line per event; heartbeats print nothing.</summary>
    internal static string? Line(OperatorEvent e) => e.EventCase switch
    {
        OperatorEvent.EventOneofCase.Subscribed =>
            $"subscribed to {e.Subscribed.Master?.Address}: {e.Subscribed.Agents.Count} agents, {e.Subscribed.Frameworks.Count} frameworks, {e.Subscribed.Tasks.Count} tasks",
        OperatorEvent.EventOneofCase.TaskAdded =>
            $"task added      {e.TaskAdded.Task.TaskId} ({e.TaskAdded.Task.FrameworkId}) on {e.TaskAdded.Task.AgentId}: {Output.State(e.TaskAdded.Task.State)}",
        OperatorEvent.EventOneofCase.TaskUpdated =>
            $"task updated    {e.TaskUpdated.Status.TaskId} ({e.TaskUpdated.FrameworkId}): {Output.State(e.TaskUpdated.State)}{Suffix(Output.TaskDetail(e.TaskUpdated.Status))}",
        OperatorEvent.EventOneofCase.AgentAdded =>
            $"agent added     {e.AgentAdded.Agent.Info.Id} ({e.AgentAdded.Agent.Info.Hostname}): {Output.Resources(e.AgentAdded.Agent.Total)}",
        OperatorEvent.EventOneofCase.AgentRemoved => $"agent removed   {e.AgentRemoved.AgentId}",
        OperatorEvent.EventOneofCase.FrameworkAdded =>
            $"framework added {e.FrameworkAdded.Framework.Info.Id} ({e.FrameworkAdded.Framework.Info.Name}), roles {string.Join(",", e.FrameworkAdded.Framework.Info.Roles)}",
        OperatorEvent.EventOneofCase.FrameworkUpdated =>
            $"framework updated {e.FrameworkUpdated.Framework.Info.Id}: {(e.FrameworkUpdated.Framework.Connected ? "connected" : "disconnected")}",
        OperatorEvent.EventOneofCase.FrameworkRemoved => $"framework removed {e.FrameworkRemoved.Framework.Id} ({e.FrameworkRemoved.Framework.Name})",
        _ => null,
    };

    private static string Suffix(string detail) => detail.Length == 0 ? "" : " — " + detail;

    private static void Write(ClusterCommands.Context c, List<(string Key, string Value)> rows)
    {
        var width = rows.Max(r => r.Key.Length) + 2;
        foreach (var (key, value) in rows)
        {
            c.Out.WriteLine((key + ":").PadRight(width) + (string.IsNullOrEmpty(value) ? "-" : value));
        }
    }
}
