using System.Text.RegularExpressions;
using Cronos;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Scheduler.Jobs.Spec;

/// <summary>
/// Reads a job file (YAML, docs/jobs.md) into a <see cref="JobSpec"/>. Everything wrong is
/// reported at once as a <see cref="JobFileException"/> whose errors carry file:line:column and
/// what to write instead: YAML syntax, unknown fields (with the closest known name), values of the
/// wrong type or out of range, fields that do not apply to the job's type.
/// </summary>
public static partial class JobFileParser
{
    /// <summary>Parses and validates <paramref name="yaml"/>.</summary>
    /// <param name="yaml">The file's text.</param>
    /// <param name="file">The file's name, for error positions.</param>
    /// <exception cref="JobFileException">The file is refused.</exception>
    public static JobSpec Parse(string yaml, string file = "job.yaml")
    {
        ArgumentNullException.ThrowIfNull(yaml);
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            var message = e.InnerException is YamlException inner ? inner.Message : e.Message;
            throw new JobFileException([new JobFileError(file, e.Start.Line, e.Start.Column, $"not valid YAML: {Trim(message)}")]);
        }
        if (stream.Documents.Count != 1)
        {
            throw new JobFileException([new JobFileError(file, 1, 1, stream.Documents.Count == 0
                ? "the file is empty; a job file needs at least name, type and task (see docs/jobs.md)"
                : "one job per file: this file holds several YAML documents (---); split it")]);
        }
        var errors = new List<JobFileError>();
        var root = YamlFields.Open(file, "", stream.Documents[0].RootNode, errors);
        var spec = root is null ? null : ReadJob(file, root, errors);
        if (errors.Count > 0 || spec is null)
        {
            throw new JobFileException(errors.OrderBy(e => e.Line).ThenBy(e => e.Column).ToList());
        }
        return spec;
    }

    private static JobSpec? ReadJob(string file, YamlFields f, List<JobFileError> errors)
    {
        var name = f.String("name", required: true, example: "web");
        if (name is not null && !NamePattern().IsMatch(name))
        {
            f.Error(f.Get("name")!, $"name '{name}' is not allowed; use lower-case letters, digits and '-' (starting with a letter, at most 48), e.g. name: nightly-report");
            name = null;
        }
        var type = f.Enum<JobType>("type");
        if (type is null && !f.Has("type"))
        {
            f.Error(f.Node, "missing field 'type'; write type: service, type: batch or type: cron");
        }
        var role = f.String("role") ?? "default";
        if (!RolePattern().IsMatch(role))
        {
            f.Error(f.Get("role")!, $"role '{role}' is not a role name; write words of letters, digits, '-' or '_' separated by '/', e.g. role: eng/web");
        }
        TaskSpec? task = null;
        if (f.Get("task") is { } taskNode)
        {
            task = YamlFields.Open(file, "task", taskNode, errors) is { } t ? TaskReader.Read(file, t, errors) : null;
        }
        else
        {
            f.Error(f.Node, "missing field 'task'; write e.g. task: {command: 'echo hello', resources: {cpus: 0.1, mem: 32}}");
        }
        var constraints = ConstraintReader.Read(file, f, errors);

        // Fields of one type only: read them all (so none is "unknown"), then refuse the ones
        // that do not apply.
        var instances = f.Int("instances", 0, 10_000);
        var instanceNames = f.StringList("instance_names");
        var restart = PolicyReader.Restart(file, f, "restart", errors);
        var update = PolicyReader.Update(file, f, errors);
        var idle = PolicyReader.IdleStop(file, f, errors);
        var count = f.Int("count", 0, 100_000);
        var parallelism = f.Int("parallelism", 0, 100_000);
        var retries = PolicyReader.Restart(file, f, "retries", errors);
        var deadline = f.Duration("deadline", TimeSpan.FromSeconds(1));
        var gang = f.Bool("gang");
        var schedule = f.String("schedule");
        var timeZone = f.String("time_zone");
        var concurrency = f.Enum<CronConcurrency>("concurrency");
        var dependsOn = f.StringList("depends_on");
        f.RefuseUnknown();

        if (type is { } t2)
        {
            string[] serviceOnly = ["instances", "instance_names", "restart", "update", "idle_stop"];
            string[] runOnly = ["count", "parallelism", "retries", "deadline", "gang"];
            string[] cronOnly = ["schedule", "time_zone", "concurrency", "depends_on"];
            var notFor = t2 switch
            {
                JobType.Service => runOnly.Concat(cronOnly),
                JobType.Batch => serviceOnly.Concat(cronOnly),
                _ => serviceOnly,
            };
            foreach (var key in notFor.Where(f.Has))
            {
                f.Error(f.KeyNode(key), $"'{key}' does not apply to a {YamlFields.Snake(t2.ToString())} job; {Applies(key)}");
            }
            if (t2 == JobType.Cron && schedule is null && !f.Has("schedule"))
            {
                f.Error(f.Node, "a cron job needs a schedule, e.g. schedule: '0 2 * * *' (02:00 every day) or '*/10 * * * * *' (every 10 s)");
            }
        }
        TimeZoneInfo? zone = null;
        if (timeZone is not null && !TimeZoneInfo.TryFindSystemTimeZoneById(timeZone, out zone))
        {
            f.Error(f.Get("time_zone")!, $"unknown time zone '{timeZone}'; write an IANA id such as UTC, Europe/Paris or America/New_York");
        }
        if (schedule is not null && CronSchedule.TryParse(schedule, out var error) is null)
        {
            f.Error(f.Get("schedule")!, error!);
        }
        if (instanceNames is not null)
        {
            foreach (var dup in instanceNames.GroupBy(n => n).Where(g => g.Count() > 1))
            {
                f.Error(f.Get("instance_names")!, $"instance name '{dup.Key}' is listed twice; each instance needs its own name");
            }
            foreach (var bad in instanceNames.Where(n => !NamePattern().IsMatch(n)))
            {
                f.Error(f.Get("instance_names")!, $"instance name '{bad}' is not allowed; use lower-case letters, digits and '-', e.g. user-42");
            }
            if (instances is { } n && n != instanceNames.Count)
            {
                f.Error(f.Get("instances")!, $"instances is {n} but instance_names lists {instanceNames.Count}; write one of them only");
            }
        }
        if (update is not null && instances is { } i2 && update.MinHealthy > i2)
        {
            f.Error(f.Get("update")!, $"update.min_healthy is {update.MinHealthy} but the service has {i2} instances; write at most {i2}");
        }
        if (dependsOn is not null && name is not null && dependsOn.Contains(name))
        {
            f.Error(f.Get("depends_on")!, $"job '{name}' cannot depend on itself; remove it from depends_on");
        }

        if (errors.Count > 0 || name is null || type is null || task is null)
        {
            return null;
        }
        return new JobSpec
        {
            Name = name,
            Role = role,
            Type = type.Value,
            Task = task,
            Constraints = constraints,
            Instances = instanceNames?.Count ?? instances ?? 1,
            InstanceNames = instanceNames ?? [],
            Restart = restart ?? new RestartPolicy(),
            Update = update ?? new UpdatePolicy(),
            IdleStop = idle,
            Count = count ?? 1,
            Parallelism = parallelism ?? 0,
            Retries = retries ?? new RestartPolicy { Attempts = 0 },
            Deadline = deadline,
            Gang = gang ?? false,
            Schedule = schedule,
            TimeZone = zone?.Id ?? "UTC",
            Concurrency = concurrency ?? CronConcurrency.Forbid,
            DependsOn = dependsOn ?? [],
        };
    }

    private static string Applies(string key) => key switch
    {
        "instances" or "instance_names" or "restart" or "update" or "idle_stop" => "it is a field of type: service",
        "schedule" or "time_zone" or "concurrency" or "depends_on" => "it is a field of type: cron",
        _ => "it is a field of type: batch and type: cron",
    };

    private static string Trim(string message)
    {
        var close = message.IndexOf("): ", StringComparison.Ordinal);
        return close >= 0 && message.StartsWith('(') ? message[(close + 3)..] : message;
    }

    [GeneratedRegex("^[a-z][a-z0-9-]{0,47}$")]
    internal static partial Regex NamePattern();

    [GeneratedRegex("^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")]
    private static partial Regex RolePattern();
}
