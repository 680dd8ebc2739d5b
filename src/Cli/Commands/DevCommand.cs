using System.CommandLine;
using Scheduler.Cli.Cluster;

namespace Scheduler.Cli.Commands;

/// <summary><c>schedctl dev up</c>: a local cluster that stays up until Ctrl-C/SIGTERM.</summary>
public static class DevCommand
{
    private static readonly Option<int> Agents = new("--agents") { Description = "Number of agents (default 1).", DefaultValueFactory = _ => 1 };
    private static readonly Option<int> Masters = new("--masters") { Description = "Number of masters (default 1; more run on a local etcd).", DefaultValueFactory = _ => 1 };
    private static readonly Option<int> Port = new("--port") { Description = "Port of the (first) master (default 5050; 0: any free ports); further masters and the agents use the next ports.", DefaultValueFactory = _ => 5050 };
    private static readonly Option<string?> WorkDir = new("--work-dir") { Description = "Work directory (default: a temp directory removed on exit)." };
    private static readonly Option<string?> Resources = new("--resources") { Description = "Each agent's resources (default cpus:4;mem:4096;disk:8192;ports:[31000-31999])." };

    private static readonly Option<bool> Insecure = new("--insecure") { Description = "Run without TLS and authentication: plaintext, and the masters serve anyone who reaches their ports, with every action allowed." };
    private static readonly Option<bool> NoJobs = new("--no-jobs") { Description = "Do not start the jobs framework ('schedctl job …')." };

    public static Command Create()
    {
        var up = new Command("up", "Start a local master, agents and the jobs framework; stay up until Ctrl-C.");
        foreach (var o in new Option[] { Agents, Masters, Port, WorkDir, Resources, NoJobs, Insecure })
        {
            up.Options.Add(o);
        }
        up.SetAction((p, ct) => UpAsync(p, ct));
        var dev = new Command("dev", "A local development cluster.");
        dev.Subcommands.Add(up);
        return dev;
    }

    private static async Task<int> UpAsync(ParseResult parse, CancellationToken ct)
    {
        var port = parse.GetValue(Port);
        if (port is < 0 or > 65000)
        {
            throw CliException.BadInput("--port must be between 1 and 65000 (or 0 for any free ports)");
        }
        var masters = parse.GetValue(Masters);
        ResourceText.CheckResources(parse.GetValue(Resources), "--resources");
        var options = new LocalClusterOptions
        {
            Masters = masters,
            Agents = parse.GetValue(Agents),
            MasterPort = port,
            AgentPort = port == 0 ? 0 : port + masters,
            WorkDir = parse.GetValue(WorkDir),
            AgentResources = parse.GetValue(Resources) ?? new LocalClusterOptions().AgentResources,
            OnLine = (name, line) => Console.Out.WriteLine($"[{name}] {line}"),
            Jobs = !parse.GetValue(NoJobs),
            Secure = !parse.GetValue(Insecure),
        };
        var output = parse.InvocationConfiguration.Output;
        await using var cluster = await LocalCluster.StartAsync(options, ct);
        await output.WriteLineAsync();
        await output.WriteLineAsync($"cluster up: master(s) {cluster.MasterList}, {cluster.AgentInfo.Count} agent(s), work dir {cluster.WorkDir}");
        if (cluster.Credentials is { } credentials)
        {
            await output.WriteLineAsync($"TLS: on every endpoint; CA {credentials.CaFile} (throwaway, made for this work dir; certificates in {credentials.TlsDir})");
            await output.WriteLineAsync($"credentials: operator token {credentials.AdminTokenFile} (principal 'admin', a superuser), ACLs {credentials.Acls} (edit to change who may do what)");
            await output.WriteLineAsync($"      export SCHED_TLS_CA={credentials.CaFile} SCHED_TOKEN=$(cat {credentials.AdminTokenFile})");
        }
        else
        {
            await output.WriteLineAsync("security: off (--insecure): plaintext, and anyone who reaches the master's port owns this cluster");
        }
        await output.WriteLineAsync($"try:  schedctl agents    schedctl run -- echo hello    (export SCHED_MASTER={cluster.MasterList} if not on the default port)");
        if (cluster.JobsAddress is { } jobs)
        {
            await output.WriteLineAsync($"jobs API: {jobs}   try:  schedctl job run samples/jobs/web.yaml    schedctl job list");
        }
        await output.WriteLineAsync("Ctrl-C stops everything.");
        var error = parse.InvocationConfiguration.Error;
        try
        {
            await cluster.WatchDaemonsAsync(line => error.WriteLine("schedctl: " + line), ct);
            // No master left: nothing can use the cluster.
            await error.WriteLineAsync("schedctl: no master is running any more; stopping the cluster");
            return CliException.Failure;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        await output.WriteLineAsync("stopping…");
        return 0;
    }
}
