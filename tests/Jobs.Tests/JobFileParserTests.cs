using Scheduler.Jobs.Spec;

namespace Scheduler.Jobs.Tests;

public class JobFileParserTests
{
    [Fact]
    public void The_minimal_form_of_each_type_parses()
    {
        var service = JobFileParser.Parse("""
            name: web
            type: service
            role: eng
            instances: 3
            task: {command: "sleep 100", resources: {cpus: 0.5, mem: 128, disk: 10}, env: {A: b}}
            """);
        Assert.Equal(JobType.Service, service.Type);
        Assert.Equal(3, service.Instances);
        Assert.Equal("eng", service.Role);
        Assert.Equal(0.5, service.Task.Cpus);
        Assert.Equal(128, service.Task.Mem);
        Assert.Equal("b", service.Task.Env["A"]);

        var batch = JobFileParser.Parse("name: crunch\ntype: batch\ncount: 5\ntask: {command: 'true'}\n");
        Assert.Equal(5, batch.Count);

        var cron = JobFileParser.Parse("name: nightly\ntype: cron\nschedule: '0 2 * * *'\ntask: {image: 'oci:/img:1'}\n");
        Assert.Equal("0 2 * * *", cron.Schedule);
        Assert.Equal("oci:/img:1", cron.Task.Image);
    }

    [Fact]
    public void Every_section_is_read()
    {
        var spec = JobFileParser.Parse("""
            name: web
            type: service
            instances: 4
            task:
              command: ./server
              user: nobody
              kill_grace: 10s
              resources: {cpus: 1, mem: 256, ports: 1}
              uris: [https://example.com/server.tar.gz, {uri: 'file:///opt/tool', executable: true}]
              health_check: {command: 'test -f ready', interval: 500ms, failures: 2, grace: 1m}
            constraints:
              - {attribute: rack, operator: unique}
              - {attribute: zone, operator: like, value: 'eu-.*'}
              - {attribute: hostname, operator: max_per, value: '2'}
            restart: {attempts: 5, delay: 2s, backoff: 1.5, max_delay: 1m30s}
            update: {max_parallel: 2, min_healthy: 2, healthy_deadline: 20s, auto_revert: false}
            """);
        Assert.Equal(TimeSpan.FromSeconds(10), spec.Task.KillGrace);
        Assert.Equal(2, spec.Task.Uris.Count);
        Assert.True(spec.Task.Uris[1].Executable);
        Assert.Equal(TimeSpan.FromMilliseconds(500), spec.Task.HealthCheck!.Interval);
        Assert.Equal(3, spec.Constraints.Count);
        Assert.Equal(ConstraintOperator.MaxPer, spec.Constraints[2].Operator);
        Assert.Equal(TimeSpan.FromSeconds(90), spec.Restart.MaxDelay);
        Assert.Equal(2, spec.Update.MinHealthy);
        Assert.False(spec.Update.AutoRevert);
    }

    [Fact]
    public void An_unknown_field_is_refused_with_its_line_column_and_the_closest_name()
    {
        var e = Assert.Throws<JobFileException>(() => JobFileParser.Parse("name: web\ntype: service\ninstance: 3\ntask: {command: x}\n", "web.yaml"));
        var error = Assert.Single(e.Errors);
        Assert.Equal(("web.yaml", 3L, 1L), (error.File, error.Line, error.Column));
        Assert.Contains("unknown field 'instance'", error.Message, StringComparison.Ordinal);
        Assert.Contains("did you mean 'instances'", error.Message, StringComparison.Ordinal);
        Assert.StartsWith("web.yaml:3:1: ", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_values_are_refused_each_at_its_position_with_what_to_write()
    {
        var e = Assert.Throws<JobFileException>(() => JobFileParser.Parse("""
            name: web
            type: servise
            task:
              command: x
              resources: {cpus: lots, mem: -1}
              kill_grace: soon
            """));
        Assert.Collection(e.Errors,
            t => Assert.Equal((2L, 7L, true), (t.Line, t.Column, t.Message.Contains("service | batch | cron", StringComparison.Ordinal))),
            c => Assert.Equal((5L, 21L, true), (c.Line, c.Column, c.Message.Contains("number of cores", StringComparison.Ordinal))),
            m => Assert.Equal((5L, 32L, true), (m.Line, m.Column, m.Message.Contains("from 1 to", StringComparison.Ordinal))),
            k => Assert.Equal((6L, 15L, true), (k.Line, k.Column, k.Message.Contains("30s, 5m", StringComparison.Ordinal))));
    }

    [Fact]
    public void Bad_yaml_syntax_is_refused_with_line_and_column()
    {
        var e = Assert.Throws<JobFileException>(() => JobFileParser.Parse("name: web\ntype: batch\ntask: {command: x\n", "bad.yaml"));
        var error = Assert.Single(e.Errors);
        Assert.Equal("bad.yaml", error.File);
        Assert.True(error.Line >= 3, error.ToString());
        Assert.Contains("not valid YAML", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Fields_of_another_type_are_refused_naming_the_type_they_belong_to()
    {
        var e = Assert.Throws<JobFileException>(() => JobFileParser.Parse("name: web\ntype: service\nschedule: '* * * * *'\ntask: {command: x}\n"));
        var error = Assert.Single(e.Errors);
        Assert.Equal(3, error.Line);
        Assert.Contains("type: cron", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("name: Web_1\ntype: batch\ntask: {command: x}\n", "lower-case letters")]
    [InlineData("name: c\ntype: cron\ntask: {command: x}\n", "needs a schedule")]
    [InlineData("name: c\ntype: cron\nschedule: '61 * * * *'\ntask: {command: x}\n", "not a cron expression")]
    [InlineData("name: c\ntype: cron\nschedule: '* * *'\ntask: {command: x}\n", "has 3 fields")]
    [InlineData("name: c\ntype: cron\nschedule: '* * * * *'\ntime_zone: Mars/Base\ntask: {command: x}\n", "IANA")]
    [InlineData("name: b\ntype: batch\ntask: {resources: {cpus: 1}}\n", "needs a command")]
    [InlineData("name: b\ntype: batch\ntask: {command: x}\nconstraints: [{attribute: rack, operator: near}]\n", "unique | cluster | like | unlike | max_per")]
    [InlineData("name: b\ntype: batch\ntask: {command: x, uris: ['ftp://x/y']}\n", "not an http://")]
    [InlineData("name: s\ntype: service\ninstances: 2\nupdate: {min_healthy: 3}\ntask: {command: x}\n", "at most 2")]
    [InlineData("type: batch\ntask: {command: x}\n", "missing field 'name'")]
    [InlineData("- a\n- b\n", "must be a mapping")]
    public void Refusals_say_what_to_write(string yaml, string expected)
    {
        var e = Assert.Throws<JobFileException>(() => JobFileParser.Parse(yaml));
        Assert.Contains(e.Errors, x => x.Message.Contains(expected, StringComparison.Ordinal));
        Assert.All(e.Errors, x => Assert.True(x.Line >= 1 && x.Column >= 1));
    }

    [Theory]
    [InlineData("30s", 30)]
    [InlineData("1h30m", 5400)]
    [InlineData("250ms", 0.25)]
    [InlineData("2", 2)]
    [InlineData("1m30s", 90)]
    public void Durations_read_as_written(string text, double seconds)
    {
        Assert.True(YamlFields.TryParseDuration(text, out var d));
        Assert.Equal(seconds, d.TotalSeconds, 6);
    }
}

public class SampleJobFileTests
{
    [Theory]
    [InlineData("web.yaml")]
    [InlineData("nightly-extract.yaml")]
    [InlineData("nightly-transform.yaml")]
    [InlineData("nightly-load.yaml")]
    [InlineData("notebooks.yaml")]
    public void The_samples_parse(string file)
    {
        var path = Path.Combine(Scheduler.Integration.Tests.Schedctl.RepoRoot, "samples", "jobs", file);
        var spec = JobFileParser.Parse(File.ReadAllText(path), file);
        Assert.False(string.IsNullOrEmpty(spec.Name));
    }
}
