using System.CommandLine;
using System.Globalization;
using Google.Protobuf;
using Sched.V1;
using Scheduler.FrameworkSdk;
using Scheduler.Protocol;
using Grpc.Core;
using Spectre.Console;

namespace Scheduler.Cli.Commands;

/// <summary>Read and admin commands: agents, frameworks, tasks, roles, leader, quota, weights.</summary>
public static class ClusterCommands
{
    private static readonly Option<bool> All = new("--all") { Description = "Include completed (terminal) tasks." };
    private static readonly Option<string?> FrameworkFilter = new("--framework") { Description = "Only tasks of this framework id." };
    private static readonly Option<bool> Force = new("--force") { Description = "Set the quota even if guarantees exceed the cluster." };
    private static readonly Option<string?> Guarantee = new("--guarantee") { Description = "Guaranteed resources, e.g. 'cpus:2;mem:1024'." };
    private static readonly Option<string?> Limit = new("--limit") { Description = "Resource limits, e.g. 'cpus:8;mem:8192'." };
    private static readonly Argument<string> Role = new("role") { Description = "The role, e.g. 'eng/batch'." };
    private static readonly Argument<string[]> Weights = new("weights") { Description = "ROLE=WEIGHT pairs, e.g. 'web=2 batch=1'.", Arity = ArgumentArity.OneOrMore };

    public static IEnumerable<Command> Create()
    {
        var agents = new Command("agents", "List agents: status, resources, tasks.");
        agents.SetAction((p, ct) => RunAsync(p, ListAgentsAsync, ct));
        yield return agents;

        var frameworks = new Command("frameworks", "List frameworks.");
        frameworks.SetAction((p, ct) => RunAsync(p, ListFrameworksAsync, ct));
        yield return frameworks;

        var tasks = new Command("tasks", "List tasks (live ones; --all adds completed ones).");
        tasks.Options.Add(All);
        tasks.Options.Add(FrameworkFilter);
        tasks.SetAction((p, ct) => RunAsync(p, ListTasksAsync, ct));
        yield return tasks;

        var roles = new Command("roles", "List roles: weight, quota, allocation, dominant share.");
        roles.SetAction((p, ct) => RunAsync(p, ListRolesAsync, ct));
        yield return roles;

        var leader = new Command("leader", "Show which master leads.");
        leader.SetAction((p, ct) => RunAsync(p, ShowLeaderAsync, ct));
        yield return leader;

        var quota = new Command("quota", "Show or set role quotas.");
        var get = new Command("get", "Show all quotas.");
        get.SetAction((p, ct) => RunAsync(p, GetQuotaAsync, ct));
        var set = new Command("set", "Set (replace) a role's quota; no --guarantee and no --limit removes it.");
        set.Arguments.Add(Role);
        set.Options.Add(Guarantee);
        set.Options.Add(Limit);
        set.Options.Add(Force);
        set.SetAction((p, ct) => RunAsync(p, SetQuotaAsync, ct));
        quota.Subcommands.Add(get);
        quota.Subcommands.Add(set);
        yield return quota;

        var weights = new Command("weights", "Set role weights.");
        var wset = new Command("set", "Set weights: schedctl weights set web=2 batch=1");
        wset.Arguments.Add(Weights);
        wset.SetAction((p, ct) => RunAsync(p, SetWeightsAsync, ct));
        weights.Subcommands.Add(wset);
        yield return weights;
    }

    /// <summary>Runs <paramref name="body"/> with a master connection and the output writer.</summary>
    internal static async Task<int> RunAsync(ParseResult parse, Func<Context, Task<int>> body, CancellationToken ct)
    {
        using var connection = new MasterConnection(GlobalOptions.Masters(parse), null, GlobalOptions.ChannelSettings(parse));
        var context = new Context(parse, connection, parse.InvocationConfiguration.Output, parse.GetValue(GlobalOptions.Json), ct);
        return await body(context);
    }

    private static async Task<int> ListAgentsAsync(Context c)
    {
        var response = await Pages.AllAsync(new GetAgentsRequest(), r => c.Connection.CallAsync(OperatorMethods.GetAgents, r, c.Cancellation));
        if (c.Print(response))
        {
            return 0;
        }
        var table = Output.NewTable("ID", "HOST", "ADDRESS", "STATUS", "TOTAL", "ALLOCATED", "TASKS");
        foreach (var a in response.Agents)
        {
            table.AddRow(Output.Escape(a.Info.Id), Output.Escape(a.Info.Hostname), Output.Escape(a.Info.Address), Status(a.Status),
                Output.Escape(Output.Resources(a.Total)), Output.Escape(Output.Resources(a.Allocated)), a.RunningTasks.ToString(CultureInfo.InvariantCulture));
        }
        c.Render(table, response.Agents.Count, "agents");
        return 0;
    }

    private static async Task<int> ListFrameworksAsync(Context c)
    {
        var response = await c.Connection.CallAsync(OperatorMethods.GetFrameworks, new GetFrameworksRequest(), c.Cancellation);
        if (c.Print(response))
        {
            return 0;
        }
        var table = Output.NewTable("ID", "NAME", "ROLES", "CONNECTED", "ALLOCATED", "RUNNING", "FINISHED", "FAILED");
        foreach (var f in response.Frameworks)
        {
            table.AddRow(Output.Escape(f.Info.Id), Output.Escape(f.Info.Name), Output.Escape(string.Join(",", f.Info.Roles)),
                f.Connected ? "yes" : "no", Output.Escape(Output.Resources(f.Allocated)), f.RunningTasks.ToString(CultureInfo.InvariantCulture),
                f.FinishedTasks.ToString(CultureInfo.InvariantCulture), f.FailedTasks.ToString(CultureInfo.InvariantCulture));
        }
        c.Render(table, response.Frameworks.Count, "frameworks");
        return 0;
    }

    private static async Task<int> ListTasksAsync(Context c)
    {
        var request = new GetTasksRequest { IncludeCompleted = c.Parse.GetValue(All), FrameworkId = c.Parse.GetValue(FrameworkFilter) ?? "" };
        var response = await Pages.AllAsync(request, r => c.Connection.CallAsync(OperatorMethods.GetTasks, r, c.Cancellation));
        if (c.Print(response))
        {
            return 0;
        }
        var table = Output.NewTable("ID", "NAME", "FRAMEWORK", "AGENT", "STATE", "RESOURCES", "DETAIL");
        foreach (var t in response.Tasks)
        {
            table.AddRow(Output.Escape(t.TaskId), Output.Escape(t.Name), Output.Escape(t.FrameworkId), Output.Escape(t.AgentId),
                Output.State(t.State), Output.Escape(Output.Resources(t.Resources)), Output.Escape(Output.TaskDetail(t.Status)));
        }
        c.Render(table, response.Tasks.Count, request.IncludeCompleted ? "tasks" : "live tasks (--all for completed ones)");
        return 0;
    }

    private static async Task<int> ListRolesAsync(Context c)
    {
        var response = await c.Connection.CallAsync(OperatorMethods.GetRoles, new GetRolesRequest(), c.Cancellation);
        if (c.Print(response))
        {
            return 0;
        }
        var table = Output.NewTable("ROLE", "WEIGHT", "DOMINANT SHARE", "ALLOCATED", "QUOTA (guarantee / limit)", "FRAMEWORKS", "TASKS");
        foreach (var r in response.Roles)
        {
            var quota = r.Quota is null ? "-" : $"{Output.Resources(r.Quota.Guarantees)} / {Output.Resources(r.Quota.Limits)}";
            table.AddRow(Output.Escape(r.Name), Output.Number(r.Weight), Output.Percent(r.DominantShare), Output.Escape(Output.Resources(r.Allocated)),
                Output.Escape(quota), r.Frameworks.Count.ToString(CultureInfo.InvariantCulture), r.RunningTasks.ToString(CultureInfo.InvariantCulture));
        }
        c.Render(table, response.Roles.Count, "roles");
        return 0;
    }

    private static async Task<int> ShowLeaderAsync(Context c)
    {
        var response = await c.Connection.CallAsync(OperatorMethods.GetLeader, new GetLeaderRequest(), c.Cancellation);
        if (c.Print(response))
        {
            return 0;
        }
        if (response.Leader is null)
        {
            c.Out.WriteLine("no leader is known right now");
            return 1;
        }
        c.Out.WriteLine($"leader: {response.Leader.Address} (id {response.Leader.Id}, term {response.Leader.Term}, version {response.Leader.Version})");
        return 0;
    }

    private static async Task<int> GetQuotaAsync(Context c)
    {
        var response = await c.Connection.CallAsync(OperatorMethods.GetQuota, new GetQuotaRequest(), c.Cancellation);
        if (c.Print(response))
        {
            return 0;
        }
        var table = Output.NewTable("ROLE", "GUARANTEE", "LIMIT");
        foreach (var q in response.Quotas)
        {
            table.AddRow(Output.Escape(q.Role), Output.Escape(Output.Resources(q.Guarantees)), Output.Escape(Output.Resources(q.Limits)));
        }
        c.Render(table, response.Quotas.Count, "quotas");
        return 0;
    }

    private static async Task<int> SetQuotaAsync(Context c)
    {
        var quota = new QuotaInfo { Role = c.Parse.GetValue(Role)! };
        quota.Guarantees.Add(ResourceText.ParseScalars(c.Parse.GetValue(Guarantee), "--guarantee"));
        quota.Limits.Add(ResourceText.ParseScalars(c.Parse.GetValue(Limit), "--limit"));
        var request = new UpdateQuotaRequest { Force = c.Parse.GetValue(Force) };
        request.Quotas.Add(quota);
        await c.Connection.CallAsync(OperatorMethods.UpdateQuota, request, c.Cancellation);
        if (!c.Print(new UpdateQuotaResponse()))
        {
            c.Out.WriteLine(quota.Guarantees.Count + quota.Limits.Count == 0 ? $"quota of role {quota.Role} removed" : $"quota of role {quota.Role} set");
        }
        return 0;
    }

    private static async Task<int> SetWeightsAsync(Context c)
    {
        var request = new UpdateWeightsRequest();
        foreach (var pair in c.Parse.GetValue(Weights) ?? [])
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || !double.TryParse(pair.AsSpan(eq + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out var weight) || !(weight > 0) || !double.IsFinite(weight))
            {
                throw CliException.BadInput($"'{pair}' is not ROLE=WEIGHT with a positive weight (e.g. web=2)");
            }
            request.Weights.Add(new WeightInfo { Role = pair[..eq], Weight = weight });
        }
        await c.Connection.CallAsync(OperatorMethods.UpdateWeights, request, c.Cancellation);
        if (!c.Print(new UpdateWeightsResponse()))
        {
            c.Out.WriteLine("weights set: " + string.Join(", ", request.Weights.Select(w => $"{w.Role}={Output.Number(w.Weight)}")));
        }
        return 0;
    }

    private static string Status(AgentStatus status) => status switch
    {
        AgentStatus.AgentActive => "active",
        AgentStatus.AgentUnreachable => "unreachable",
        AgentStatus.AgentGone => "gone",
        AgentStatus.AgentDraining => "draining",
        AgentStatus.AgentDrained => "drained",
        _ => "?",
    };

    internal sealed record Context(ParseResult Parse, MasterConnection Connection, TextWriter Out, bool Json, CancellationToken Cancellation)
    {
        /// <summary>Prints JSON when asked; true if it did.</summary>
        public bool Print(IMessage message)
        {
            if (Json)
            {
                Output.WriteJson(Out, message);
            }
            return Json;
        }

        public void Render(Spectre.Console.Table table, int count, string what)
        {
            if (count == 0)
            {
                Out.WriteLine($"no {what}");
                return;
            }
            Output.Console(Out).Write(table);
        }
    }
}
