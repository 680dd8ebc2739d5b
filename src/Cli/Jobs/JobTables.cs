using Sched.V1;
using Scheduler.Cli.Commands;
using Spectre.Console;

namespace Scheduler.Cli.Jobs;

/// <summary>The tables of <c>schedctl job</c>.</summary>
internal static class JobTables
{
    public static void Plan(TextWriter output, JobPlan plan)
    {
        output.WriteLine(plan.Action switch
        {
            "create" => $"job {plan.Name}: new, version {plan.NextVersion}",
            "unchanged" => $"job {plan.Name}: no change from version {plan.CurrentVersion}",
            _ => $"job {plan.Name}: version {plan.CurrentVersion} -> {plan.NextVersion}",
        });
        foreach (var change in plan.Changes)
        {
            output.WriteLine($"  ~ {change}");
        }
        if (plan.Steps.Count == 0)
        {
            return;
        }
        var table = Output.NewTable("ACTION", "INSTANCE", "DETAIL");
        foreach (var s in plan.Steps)
        {
            table.AddRow(Output.Escape(s.Action), Output.Escape(s.Instance), Output.Escape(s.Detail));
        }
        Output.Console(output).Write(table);
    }

    public static void List(ClusterCommands.Context c, ListJobsResponse response)
    {
        var table = Output.NewTable("NAME", "TYPE", "ROLE", "VERSION", "STATE", "DESIRED", "RUNNING", "HEALTHY", "SUCCEEDED", "FAILED", "NEXT RUN");
        foreach (var j in response.Jobs)
        {
            table.AddRow(Output.Escape(j.Name), j.Type, Output.Escape(j.Role), JobCommands.Count2(j.Version), j.State, JobCommands.Count2(j.Desired),
                JobCommands.Count2(j.Running), JobCommands.Count2(j.Healthy), JobCommands.Count2(j.Succeeded), JobCommands.Count2(j.Failed), j.NextRun);
        }
        c.Render(table, response.Jobs.Count, "jobs ('schedctl job run FILE' submits one)");
    }

    public static void Status(ClusterCommands.Context c, JobInfo job)
    {
        var s = job.Summary;
        c.Out.WriteLine($"job {s.Name} ({s.Type}, role {s.Role}), version {s.Version}: {s.State}; {s.Running}/{s.Desired} running, {s.Healthy} healthy{(s.NextRun.Length > 0 ? $", next run {s.NextRun}" : "")}");
        var table = Output.NewTable("INSTANCE", "VERSION", "STATE", "HEALTH", "AGENT", "TASK", "DETAIL");
        foreach (var i in job.Instances)
        {
            var health = i.HasHealthy ? (i.Healthy ? "healthy" : "unhealthy") : "-";
            var detail = i.PendingReason.Length > 0 ? i.PendingReason : i.Message;
            table.AddRow(Output.Escape(i.Id), JobCommands.Count2(i.Version), i.State, health, Output.Escape(i.Hostname.Length > 0 ? i.Hostname : i.AgentId),
                Output.Escape(i.TaskId), Output.Escape(detail));
        }
        c.Render(table, job.Instances.Count, "instances");
        if (job.Events.Count > 0)
        {
            c.Out.WriteLine("recent events:");
            foreach (var e in job.Events.TakeLast(10))
            {
                c.Out.WriteLine($"  {e.Time}  {e.Message}");
            }
        }
    }

    public static void History(ClusterCommands.Context c, JobInfo job)
    {
        var versions = Output.NewTable("VERSION", "SUBMITTED", "FIRST LINES");
        foreach (var v in job.Versions)
        {
            var head = string.Join(" | ", v.JobFile.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(l => !l.StartsWith('#')).Take(3));
            versions.AddRow(JobCommands.Count2(v.Version), v.Submitted, Output.Escape(head));
        }
        c.Render(versions, job.Versions.Count, "versions");
        if (job.Runs.Count > 0)
        {
            var runs = Output.NewTable("RUN", "STARTED", "ENDED", "STATE", "MESSAGE");
            foreach (var r in job.Runs)
            {
                runs.AddRow(Output.Escape(r.Id), r.Started, r.Ended, r.State, Output.Escape(r.Message));
            }
            c.Render(runs, job.Runs.Count, "runs");
        }
    }
}
