using System.CommandLine;
using Sched.V1;
using Scheduler.Protocol;
using Scheduler.Protocol.Resources;
using Spectre.Console;

namespace Scheduler.Cli.Commands;

/// <summary><c>schedctl reserve|unreserve AGENT RESOURCES</c>: dynamic reservations of an agent's unused resources; <c>schedctl reservations</c> lists them.</summary>
public static class ReservationCommands
{
    private static readonly Argument<string> Agent = new("agent") { Description = "The agent id (see 'schedctl agents')." };
    private static readonly Argument<string> Resources = new("resources") { Description = "Resources with their role, e.g. 'cpus(web):2;mem(web):1024'." };
    private static readonly Option<string?> Principal = new("--principal") { Description = "The principal recorded on the reservation (unreserve: the one it was made with)." };

    public static IEnumerable<Command> Create()
    {
        var reserve = new Command("reserve", "Reserve unused resources of an agent for a role (offered only to that role and its sub-roles until unreserved).");
        reserve.Arguments.Add(Agent);
        reserve.Arguments.Add(Resources);
        reserve.Options.Add(Principal);
        reserve.SetAction((p, ct) => ClusterCommands.RunAsync(p, ReserveAsync, ct));
        yield return reserve;

        var unreserve = new Command("unreserve", "Remove dynamic reservations of unused resources of an agent.");
        unreserve.Arguments.Add(Agent);
        unreserve.Arguments.Add(Resources);
        unreserve.Options.Add(Principal);
        unreserve.SetAction((p, ct) => ClusterCommands.RunAsync(p, UnreserveAsync, ct));
        yield return unreserve;

        var list = new Command("reservations", "List reserved resources and persistent volumes per agent and role.");
        list.SetAction((p, ct) => ClusterCommands.RunAsync(p, ListAsync, ct));
        yield return list;
    }

    private static async Task<int> ListAsync(ClusterCommands.Context c)
    {
        var response = await Pages.AllAsync(new GetAgentsRequest(), r => c.Connection.CallAsync(OperatorMethods.GetAgents, r, c.Cancellation));
        var reserved = new GetAgentsResponse();
        foreach (var a in response.Agents)
        {
            var copy = a.Clone();
            copy.Total.Clear();
            copy.Total.Add(a.Total.Where(r => r.Reservation is not null || r.Disk is not null));
            if (copy.Total.Count > 0)
            {
                reserved.Agents.Add(copy);
            }
        }
        if (c.Print(reserved))
        {
            return 0;
        }
        var table = Output.NewTable("AGENT", "HOST", "ROLE", "TYPE", "PRINCIPAL", "RESOURCES", "VOLUMES");
        var rows = 0;
        foreach (var a in reserved.Agents)
        {
            // Unreserving needs the reservation's principal (--principal), so it is shown.
            foreach (var group in a.Total.GroupBy(r => (Role: r.Reservation?.Role ?? "*", Type: r.Reservation?.Type ?? Reservation.Types.Type.Unspecified, Principal: r.Reservation?.Principal ?? "")))
            {
                var plain = group.Where(r => r.Disk is null).ToList();
                var volumes = group.Where(r => r.Disk?.Persistence is { Id.Length: > 0 })
                    .Select(r => $"{r.Disk.Persistence.Id} ({Output.Number(r.Scalar)} MiB at {r.Disk.Volume?.ContainerPath})");
                table.AddRow(Output.Escape(a.Info.Id), Output.Escape(a.Info.Hostname), Output.Escape(group.Key.Role),
                    group.Key.Type == Reservation.Types.Type.Dynamic ? "dynamic" : group.Key.Type == Reservation.Types.Type.Static ? "static" : "-",
                    group.Key.Principal.Length == 0 ? "-" : Output.Escape(group.Key.Principal),
                    Output.Escape(Output.Resources(plain)), Output.Escape(string.Join(", ", volumes)));
                rows++;
            }
        }
        c.Render(table, rows, "reservations");
        return 0;
    }

    private static async Task<int> ReserveAsync(ClusterCommands.Context c)
    {
        var request = new ReserveResourcesRequest { AgentId = c.Parse.GetValue(Agent)!, Resources = { Parse(c) } };
        var response = await c.Connection.CallAsync(OperatorMethods.ReserveResources, request, c.Cancellation);
        if (!c.Print(response))
        {
            c.Out.WriteLine($"reserved on agent {request.AgentId}: {Protocol.Resources.ResourceText.Format(request.Resources)}");
            c.Out.WriteLine($"agent total now: {Protocol.Resources.ResourceText.Format(response.Total)}");
        }
        return 0;
    }

    private static async Task<int> UnreserveAsync(ClusterCommands.Context c)
    {
        var request = new UnreserveResourcesRequest { AgentId = c.Parse.GetValue(Agent)!, Resources = { Parse(c) } };
        var response = await c.Connection.CallAsync(OperatorMethods.UnreserveResources, request, c.Cancellation);
        if (!c.Print(response))
        {
            c.Out.WriteLine($"unreserved on agent {request.AgentId}: {Protocol.Resources.ResourceText.Format(request.Resources)}");
            c.Out.WriteLine($"agent total now: {Protocol.Resources.ResourceText.Format(response.Total)}");
        }
        return 0;
    }

    /// <summary>Every resource must name a role; the reservations are dynamic, with --principal.</summary>
    private static List<Resource> Parse(ClusterCommands.Context c)
    {
        var text = c.Parse.GetValue(Resources) ?? "";
        List<Resource> resources;
        try
        {
            resources = Protocol.Resources.ResourceText.Parse(text);
        }
        catch (ResourceFormatException e)
        {
            throw CliException.BadInput(e.Message);
        }
        var principal = c.Parse.GetValue(Principal) ?? "";
        foreach (var r in resources)
        {
            if (r.Reservation is null)
            {
                throw CliException.BadInput($"'{ResourceBagText(r)}' names no role; write it as NAME(ROLE):VALUE, e.g. cpus(web):2");
            }
            r.Reservation.Type = Reservation.Types.Type.Dynamic;
            if (principal.Length > 0)
            {
                r.Reservation.Principal = principal;
            }
        }
        if (resources.Count == 0)
        {
            throw CliException.BadInput("no resources given; e.g. 'cpus(web):2;mem(web):1024'");
        }
        return resources;
    }

    private static string ResourceBagText(Resource r) => Protocol.Resources.ResourceText.Format([r]);
}
