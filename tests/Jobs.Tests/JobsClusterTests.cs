using System.Text.RegularExpressions;
using Sched.V1;
using Scheduler.Integration.Tests;

namespace Scheduler.Jobs.Tests;

/// <summary>The jobs framework end to end: real master, agents and jobs processes.</summary>
public sealed class JobsClusterTests(TwoRackCluster cluster) : IClassFixture<TwoRackCluster>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private async Task<SubmitJobResponse> SubmitAsync(string yaml) =>
        await cluster.Jobs.SubmitJobAsync(new SubmitJobRequest { JobFile = yaml, FileName = "test.yaml" });

    [Fact]
    public async Task A_batch_with_retries_finishes_despite_failing_attempts()
    {
        var dir = Directory.CreateTempSubdirectory("jobs-retry-").FullName;
        try
        {
            // Each task fails its first two attempts and succeeds on the third.
            await SubmitAsync($$"""
                name: retry
                type: batch
                count: 2
                retries: {attempts: 3, delay: 200ms, backoff: 1.5}
                task:
                  command: 'f={{dir}}/n-$JOB_INDEX; n=$(($(cat $f 2>/dev/null || echo 0)+1)); echo $n > $f; [ $n -ge 3 ]'
                  resources: {cpus: 0.1, mem: 32}
                """);
            var job = await cluster.UntilAsync("retry", j => j.Summary.State is "complete" or "failed", Timeout, "the batch to end");
            Assert.Equal("complete", job.Summary.State);
            Assert.Equal(2u, job.Summary.Succeeded);
            Assert.All(job.Instances, i => Assert.Equal(2u, i.Attempts));
            Assert.Contains(job.Events, e => e.Message.Contains("retry 2/3", StringComparison.Ordinal));
        }
        finally
        {
            await cluster.Jobs.StopJobAsync(new StopJobRequest { Name = "retry", Purge = true });
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Unique_per_rack_spreads_and_names_the_shortfall()
    {
        try
        {
            await SubmitAsync("""
                name: spread
                type: service
                instances: 3
                constraints: [{attribute: rack, operator: unique}]
                task: {command: 'sleep 600', resources: {cpus: 0.1, mem: 32}, kill_grace: 1s}
                """);
            var job = await cluster.UntilAsync("spread", j => j.Instances.Count(i => i.State == "running") == 2 && j.Instances.Any(i => i.PendingReason.Contains("rack unique", StringComparison.Ordinal)),
                Timeout, "two instances running on two racks and the third pending with the reason");
            var running = job.Instances.Where(i => i.State == "running").ToList();
            Assert.NotEqual(running[0].AgentId, running[1].AgentId);
            var pending = Assert.Single(job.Instances, i => i.State == "pending");
            Assert.Contains("no agent satisfies rack unique: 2 racks, 3 instances", pending.PendingReason, StringComparison.Ordinal);
        }
        finally
        {
            await cluster.Jobs.StopJobAsync(new StopJobRequest { Name = "spread", Purge = true });
        }
    }

    [Fact]
    public async Task The_cli_finds_the_jobs_api_and_refuses_bad_yaml_with_line_and_column()
    {
        var dir = Directory.CreateTempSubdirectory("jobs-cli-").FullName;
        try
        {
            var bad = Path.Combine(dir, "bad.yaml");
            await File.WriteAllTextAsync(bad, "name: web\ntype: service\ninstancs: 2\ntask: {command: 'sleep 1'}\n");
            var refused = await Schedctl.RunAsync(Timeout, "--master", cluster.MasterAddress, "job", "run", bad);
            Assert.Equal(2, refused.ExitCode);
            Assert.Contains("bad.yaml:3:1: unknown field 'instancs'; did you mean 'instances'?", refused.Stderr, StringComparison.Ordinal);

            var good = Path.Combine(dir, "hello.yaml");
            await File.WriteAllTextAsync(good, "name: hello\ntype: batch\ncount: 1\ntask: {command: 'echo hi', resources: {cpus: 0.1, mem: 32}}\n");
            var run = await Schedctl.RunAsync(Timeout, "--master", cluster.MasterAddress, "job", "run", good);
            Assert.True(run.ExitCode == 0, run.ToString());
            Assert.Contains("submitted as version 1", run.Stdout, StringComparison.Ordinal);
            await cluster.UntilAsync("hello", j => j.Summary.State == "complete", Timeout, "hello to complete");
            var list = await Schedctl.RunAsync(Timeout, "--master", cluster.MasterAddress, "job", "list", "--json");
            Assert.True(list.ExitCode == 0, list.ToString());
            Assert.Contains("\"hello\"", list.Stdout, StringComparison.Ordinal);
            var logs = await Schedctl.RunAsync(Timeout, "--master", cluster.MasterAddress, "job", "logs", "hello");
            Assert.True(logs.ExitCode == 0, logs.ToString());
            Assert.Contains("hi", logs.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            await cluster.Jobs.StopJobAsync(new StopJobRequest { Name = "hello", Purge = true });
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_killed_jobs_framework_comes_back_without_launching_any_instance_twice()
    {
        try
        {
            await SubmitAsync("""
                name: keep
                type: service
                instances: 2
                task: {command: 'sleep 600', resources: {cpus: 0.1, mem: 32}, kill_grace: 1s}
                """);
            var before = await cluster.UntilAsync("keep", j => j.Instances.All(i => i.State == "running"), Timeout, "both instances running");
            var tasks = before.Instances.Select(i => i.TaskId).Order(StringComparer.Ordinal).ToList();

            await cluster.KillJobsAsync();
            await cluster.StartJobsAsync();

            var after = await cluster.UntilAsync("keep", j => j.Instances.All(i => i.State == "running"), Timeout, "both instances running after the restart");
            Assert.Equal(tasks, after.Instances.Select(i => i.TaskId).Order(StringComparer.Ordinal));
            var live = await cluster.LiveTasksAsync("keep-");
            Assert.Equal(tasks, live.Select(t => t.TaskId).Order(StringComparer.Ordinal));
        }
        finally
        {
            await cluster.Jobs.StopJobAsync(new StopJobRequest { Name = "keep", Purge = true });
        }
    }

    [Fact]
    public async Task Cron_runs_on_a_seconds_schedule_and_a_chain_of_three_runs_in_order()
    {
        var dir = Directory.CreateTempSubdirectory("jobs-cron-").FullName;
        var order = Path.Combine(dir, "order");
        try
        {
            foreach (var (name, parent) in new[] { ("extract", ""), ("transform", "extract"), ("load", "transform") })
            {
                var depends = parent.Length == 0 ? "" : $"depends_on: [{parent}]\n";
                await SubmitAsync($"name: {name}\ntype: cron\nschedule: '*/3 * * * * *'\n{depends}task: {{command: 'echo {name} $JOB_INSTANCE >> {order}', resources: {{cpus: 0.1, mem: 32}}}}\n");
            }
            await cluster.UntilAsync("load", j => j.Runs.Count(r => r.State == "succeeded") >= 2, Timeout, "two runs of the chain's last job");
            // Each line is a job's name and its instance, which names the run's period. Periods
            // overlap (a chain may take longer than the 3 s between periods, and the jobs were
            // submitted at different times, so the first periods lack the later jobs): the order
            // holds within a period. Every period that reached load wrote extract, transform,
            // load, once each, in that order.
            var lines = (await File.ReadAllLinesAsync(order)).Select(l => l.Split(' ', 2)).Select(l => (Job: l[0], Period: PeriodOf(l[1]))).ToList();
            var complete = lines.Where(l => l.Job == "load").Select(l => l.Period).ToList();
            Assert.True(complete.Count >= 2, string.Join(",", lines));
            foreach (var period in complete)
            {
                Assert.Equal(["extract", "transform", "load"], lines.Where(l => l.Period == period).Select(l => l.Job));
            }
        }
        finally
        {
            foreach (var name in new[] { "load", "transform", "extract" })
            {
                await cluster.Jobs.StopJobAsync(new StopJobRequest { Name = name, Purge = true });
            }
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The scheduled time in a cron instance id (<c>JOB-yyyyMMddTHHmmss-INDEX</c>).</summary>
    private static string PeriodOf(string instance) =>
        Regex.Match(instance, @"-(\d{8}T\d{6})(-|$)") is { Success: true } m ? m.Groups[1].Value : throw new FormatException($"no period in instance id '{instance}'");

    [Fact]
    public async Task Forbid_skips_a_run_while_the_previous_one_runs()
    {
        try
        {
            await SubmitAsync("""
                name: slow
                type: cron
                schedule: '* * * * * *'
                concurrency: forbid
                task: {command: 'sleep 3', resources: {cpus: 0.1, mem: 32}, kill_grace: 1s}
                """);
            var job = await cluster.UntilAsync("slow", j => j.Runs.Any(r => r.State == "skipped"), Timeout, "a skipped run");
            Assert.Contains("concurrency: forbid", job.Runs.First(r => r.State == "skipped").Message, StringComparison.Ordinal);
            Assert.True(job.Runs.Count(r => r.State == "running") <= 1);
        }
        finally
        {
            await cluster.Jobs.StopJobAsync(new StopJobRequest { Name = "slow", Purge = true });
        }
    }

    [Fact]
    public async Task A_rolling_update_keeps_min_healthy_and_a_broken_version_is_reverted()
    {
        const string Service = """
            name: roll
            type: service
            instances: 4
            update: {max_parallel: 1, min_healthy: 3, healthy_deadline: 8s}
            task:
              command: 'sleep 600'
              env: {V: "{V}"}
              resources: {cpus: 0.1, mem: 32}
              kill_grace: 1s
              health_check: {command: '{CHECK}', interval: 300ms, failures: 100}
            """;
        try
        {
            await SubmitAsync(Service.Replace("{V}", "1", StringComparison.Ordinal).Replace("{CHECK}", "true", StringComparison.Ordinal));
            await cluster.UntilAsync("roll", j => j.Instances.Count(i => i.State == "running" && i.Healthy) == 4 && j.Summary.State == "running", Timeout, "four healthy instances");

            var minSeen = int.MaxValue;
            async Task<bool> Observe(Func<JobInfo, bool> done)
            {
                var j = await cluster.JobAsync("roll");
                minSeen = Math.Min(minSeen, j.Instances.Count(i => i.State == "running" && i.Healthy));
                return done(j);
            }
            await cluster.Jobs.SubmitJobAsync(new SubmitJobRequest { JobFile = Service.Replace("{V}", "2", StringComparison.Ordinal).Replace("{CHECK}", "true", StringComparison.Ordinal) });
            await Poll.UntilAsync(() => Observe(j => j.Summary.State == "running" && j.Instances.All(i => i.Version == 2 && i.Healthy)), Timeout, "version 2 rolled out", TimeSpan.FromMilliseconds(50));
            Assert.True(minSeen >= 3, $"only {minSeen} healthy instances at one moment of the rollout");

            // Version 3 never becomes healthy: the rollout fails and goes back to version 2's file.
            await cluster.Jobs.SubmitJobAsync(new SubmitJobRequest { JobFile = Service.Replace("{V}", "3", StringComparison.Ordinal).Replace("{CHECK}", "false", StringComparison.Ordinal) });
            var reverted = await cluster.UntilAsync("roll", j => j.Summary.Version == 4 && j.Summary.State == "running" && j.Instances.All(i => i.Version == 4 && i.Healthy), TimeSpan.FromSeconds(90), "the revert to version 2 as version 4");
            Assert.Contains(reverted.Events, e => e.Message.Contains("rollout failed", StringComparison.Ordinal) && e.Message.Contains("reverting to version 2", StringComparison.Ordinal));
            Assert.Contains("V: \"2\"", reverted.JobFile, StringComparison.Ordinal);
        }
        finally
        {
            await cluster.Jobs.StopJobAsync(new StopJobRequest { Name = "roll", Purge = true });
        }
    }

    [Fact]
    public async Task An_idle_instance_is_stopped_and_starts_again_on_request()
    {
        var dir = Directory.CreateTempSubdirectory("jobs-idle-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "notebooks-user-1"), "0");
            await File.WriteAllTextAsync(Path.Combine(dir, "notebooks-user-2"), "0");
            await SubmitAsync($$"""
                name: notebooks
                type: service
                instance_names: [user-1, user-2]
                idle_stop: {command: 'cat {{dir}}/$JOB_INSTANCE', after: 5s}
                task: {command: 'sleep 600', resources: {cpus: 0.1, mem: 32}, kill_grace: 1s}
                """);
            await cluster.UntilAsync("notebooks", j => j.Instances.All(i => i.State == "running"), Timeout, "both notebooks running");

            await File.WriteAllTextAsync(Path.Combine(dir, "notebooks-user-1"), "3600");
            var job = await cluster.UntilAsync("notebooks", j => j.Instances.Any(i => i.State == "idle"), Timeout, "user-1 stopped as idle");
            Assert.Equal("notebooks-user-1", Assert.Single(job.Instances, i => i.State == "idle").Id);
            Assert.Equal("running", job.Instances.Single(i => i.Id == "notebooks-user-2").State);

            await File.WriteAllTextAsync(Path.Combine(dir, "notebooks-user-1"), "0");
            await cluster.Jobs.StartInstanceAsync(new StartInstanceRequest { Name = "notebooks", Instance = "user-1" });
            await cluster.UntilAsync("notebooks", j => j.Instances.All(i => i.State == "running"), Timeout, "user-1 running again");
        }
        finally
        {
            await cluster.Jobs.StopJobAsync(new StopJobRequest { Name = "notebooks", Purge = true });
            Directory.Delete(dir, recursive: true);
        }
    }
}
