using System.CommandLine;
using System.Globalization;
using Sched.V1;
using Scheduler.Cli.Commands;
using Scheduler.Jobs.Spec;
using Scheduler.Protocol;

namespace Scheduler.Cli.Jobs;

/// <summary>
/// <c>schedctl job run|plan FILE</c>, <c>job list</c>, <c>job status|scale|stop|history|logs|restart|start NAME</c>:
/// declarative jobs through the jobs framework's API (docs/jobs.md). Each prints a table, or JSON with <c>--json</c>.
/// </summary>
public static class JobCommands
{
    private static readonly Option<string?> JobsAddress = new("--jobs") { Description = "The Jobs API (host:port); default $SCHED_JOBS, else the address the jobs framework advertises to the master.", Recursive = true };
    private static readonly Argument<System.IO.FileInfo> File = new("file") { Description = "The job file (YAML, docs/jobs.md)." };
    private static readonly Argument<string> Name = new("name") { Description = "The job's name." };
    private static readonly Argument<uint> Count = new("count") { Description = "Instances (service) or tasks (batch, cron)." };
    private static readonly Option<bool> Purge = new("--purge") { Description = "Also forget the job and its history." };
    private static readonly Option<string?> Instance = new("--instance") { Description = "The instance (e.g. web-2, or user-42 of a named-instance service); default: the first." };
    private static readonly Option<string> InstanceRequired = new("--instance") { Description = "The instance to start, e.g. user-42.", Required = true };
    private static readonly Option<bool> Follow = new("--follow", "-f") { Description = "Keep printing until the task ends." };
    private static readonly Option<bool> Stderr = new("--stderr") { Description = "Show stderr instead of stdout." };

    public static Command Create()
    {
        var job = new Command("job", "Run declarative jobs: services, batch and cron (docs/jobs.md).");
        job.Options.Add(JobsAddress);

        var run = new Command("run", "Validate a job file, show the plan, submit it.");
        run.Arguments.Add(File);
        run.SetAction((p, ct) => RunAsync(p, SubmitAsync, ct));
        job.Subcommands.Add(run);

        var plan = new Command("plan", "Show what submitting a job file would start, stop or restart (a diff against the running version).");
        plan.Arguments.Add(File);
        plan.SetAction((p, ct) => RunAsync(p, PlanAsync, ct));
        job.Subcommands.Add(plan);

        var list = new Command("list", "List jobs.");
        list.SetAction((p, ct) => RunAsync(p, ListAsync, ct));
        job.Subcommands.Add(list);

        job.Subcommands.Add(Named("status", "A job's instances (version, state, health, agent, why pending) and recent events.", StatusAsync));
        var scale = Named("scale", "Set a job's instance (service) or task (batch) count.", ScaleAsync);
        scale.Arguments.Add(Count);
        job.Subcommands.Add(scale);
        var stop = Named("stop", "Kill a job's tasks and stop it (--purge: forget it too).", StopAsync);
        stop.Options.Add(Purge);
        job.Subcommands.Add(stop);
        job.Subcommands.Add(Named("history", "A job's versions and runs.", HistoryAsync));
        var logs = Named("logs", "An instance's stdout (or --stderr).", LogsAsync);
        logs.Options.Add(Instance);
        logs.Options.Add(Follow);
        logs.Options.Add(Stderr);
        job.Subcommands.Add(logs);
        job.Subcommands.Add(Named("restart", "Replace a service's instances (rolling), or start a batch or cron run now.", RestartAsync));
        var start = Named("start", "Start an idle-stopped instance of a service.", StartAsync);
        start.Options.Add(InstanceRequired);
        job.Subcommands.Add(start);
        return job;
    }

    private static Command Named(string verb, string description, Func<Context, Task<int>> body)
    {
        var command = new Command(verb, description);
        command.Arguments.Add(Name);
        command.SetAction((p, ct) => RunAsync(p, body, ct));
        return command;
    }

    private sealed record Context(ClusterCommands.Context Cluster, JobsApi Api)
    {
        public ParseResult Parse => Cluster.Parse;

        public TextWriter Out => Cluster.Out;

        public CancellationToken Cancellation => Cluster.Cancellation;
    }

    private static Task<int> RunAsync(ParseResult parse, Func<Context, Task<int>> body, CancellationToken ct) =>
        ClusterCommands.RunAsync(parse, async c =>
        {
            using var api = await JobsApi.FindAsync(parse.GetValue(JobsAddress), c.Connection, ct);
            return await body(new Context(c, api));
        }, ct);

    private static (string Text, string Name) ReadFile(ParseResult parse)
    {
        var file = parse.GetValue(File)!;
        if (!file.Exists)
        {
            throw CliException.BadInput($"no job file {file.FullName}");
        }
        var text = System.IO.File.ReadAllText(file.FullName);
        try
        {
            JobFileParser.Parse(text, file.Name); // refused here, before any call, with positions
        }
        catch (JobFileException e)
        {
            throw CliException.BadInput($"{file.Name} is refused:{Environment.NewLine}{e.Message}");
        }
        return (text, file.Name);
    }

    private static async Task<int> SubmitAsync(Context c)
    {
        var (text, name) = ReadFile(c.Parse);
        var response = await c.Api.CallAsync(JobsMethods.SubmitJob, new SubmitJobRequest { JobFile = text, FileName = name }, c.Cancellation);
        if (c.Cluster.Print(response))
        {
            return 0;
        }
        JobTables.Plan(c.Out, response.Plan);
        c.Out.WriteLine(response.Plan.Action == "unchanged"
            ? $"job {response.Name} is unchanged (version {response.Version})"
            : $"job {response.Name} submitted as version {response.Version}; 'schedctl job status {response.Name}' follows it");
        return 0;
    }

    private static async Task<int> PlanAsync(Context c)
    {
        var (text, name) = ReadFile(c.Parse);
        var response = await c.Api.CallAsync(JobsMethods.PlanJob, new PlanJobRequest { JobFile = text, FileName = name }, c.Cancellation);
        if (!c.Cluster.Print(response))
        {
            JobTables.Plan(c.Out, response.Plan);
        }
        return 0;
    }

    private static async Task<int> ListAsync(Context c)
    {
        var response = await c.Api.CallAsync(JobsMethods.ListJobs, new ListJobsRequest(), c.Cancellation);
        if (!c.Cluster.Print(response))
        {
            JobTables.List(c.Cluster, response);
        }
        return 0;
    }

    private static async Task<int> StatusAsync(Context c)
    {
        var response = await c.Api.CallAsync(JobsMethods.GetJob, new GetJobRequest { Name = c.Parse.GetValue(Name)! }, c.Cancellation);
        if (!c.Cluster.Print(response))
        {
            JobTables.Status(c.Cluster, response.Job);
        }
        return 0;
    }

    private static async Task<int> HistoryAsync(Context c)
    {
        var response = await c.Api.CallAsync(JobsMethods.GetJob, new GetJobRequest { Name = c.Parse.GetValue(Name)!, History = true }, c.Cancellation);
        if (!c.Cluster.Print(response))
        {
            JobTables.History(c.Cluster, response.Job);
        }
        return 0;
    }

    private static async Task<int> ScaleAsync(Context c)
    {
        var name = c.Parse.GetValue(Name)!;
        var response = await c.Api.CallAsync(JobsMethods.ScaleJob, new ScaleJobRequest { Name = name, Count = c.Parse.GetValue(Count) }, c.Cancellation);
        if (!c.Cluster.Print(response))
        {
            c.Out.WriteLine($"job {name} scaled from {response.Previous} to {response.Count}");
        }
        return 0;
    }

    private static async Task<int> StopAsync(Context c)
    {
        var name = c.Parse.GetValue(Name)!;
        var purge = c.Parse.GetValue(Purge);
        var response = await c.Api.CallAsync(JobsMethods.StopJob, new StopJobRequest { Name = name, Purge = purge }, c.Cancellation);
        if (!c.Cluster.Print(response))
        {
            c.Out.WriteLine($"job {name} stopped{(purge ? " and purged" : "")}; {response.Killed} tasks being killed");
        }
        return 0;
    }

    private static async Task<int> RestartAsync(Context c)
    {
        var name = c.Parse.GetValue(Name)!;
        var response = await c.Api.CallAsync(JobsMethods.RestartJob, new RestartJobRequest { Name = name }, c.Cancellation);
        if (!c.Cluster.Print(response))
        {
            c.Out.WriteLine($"job {name}: restarting {response.Restarting} instances");
        }
        return 0;
    }

    private static async Task<int> StartAsync(Context c)
    {
        var name = c.Parse.GetValue(Name)!;
        var response = await c.Api.CallAsync(JobsMethods.StartInstance, new StartInstanceRequest { Name = name, Instance = c.Parse.GetValue(InstanceRequired)! }, c.Cancellation);
        if (!c.Cluster.Print(response))
        {
            c.Out.WriteLine($"instance {response.Instance} of job {name} starting");
        }
        return 0;
    }

    private static async Task<int> LogsAsync(Context c)
    {
        var name = c.Parse.GetValue(Name)!;
        var job = (await c.Api.CallAsync(JobsMethods.GetJob, new GetJobRequest { Name = name }, c.Cancellation)).Job;
        var wanted = c.Parse.GetValue(Instance);
        var instance = wanted is null
            ? job.Instances.FirstOrDefault(i => i.TaskId.Length > 0)
            : job.Instances.FirstOrDefault(i => i.Id == wanted || i.Id == $"{name}-{wanted}");
        if (instance is null || instance.TaskId.Length == 0)
        {
            throw new CliException(wanted is null
                ? $"job {name} has no instance that has run yet"
                : $"job {name} has no instance {wanted} that has run; its instances are {string.Join(", ", job.Instances.Select(i => i.Id))}");
        }
        return await LogsCommand.PrintAsync(c.Cluster, instance.TaskId, instance.FrameworkId, c.Parse.GetValue(Stderr), c.Parse.GetValue(Follow));
    }

    internal static string Count2(uint n) => n.ToString(CultureInfo.InvariantCulture);
}
