namespace Scheduler.Jobs.Spec;

/// <summary>Reads the restart/retry, update and idle-stop sections of a job file.</summary>
internal static class PolicyReader
{
    public static RestartPolicy? Restart(string file, YamlFields f, string key, List<JobFileError> errors)
    {
        if (f.Get(key) is not { } node || YamlFields.Open(file, key, node, errors) is not { } p)
        {
            return null;
        }
        var attempts = p.Int("attempts", -1, 1_000_000);
        var delay = p.Duration("delay");
        var backoff = p.Double("backoff", 1, 10, "times the previous delay");
        var maxDelay = p.Duration("max_delay");
        p.RefuseUnknown();
        var defaults = key == "retries" ? new RestartPolicy { Attempts = 0 } : new RestartPolicy();
        return new RestartPolicy
        {
            Attempts = attempts ?? (key == "retries" ? 3 : -1),
            Delay = delay ?? defaults.Delay,
            Backoff = backoff ?? defaults.Backoff,
            MaxDelay = maxDelay ?? defaults.MaxDelay,
        };
    }

    public static UpdatePolicy? Update(string file, YamlFields f, List<JobFileError> errors)
    {
        if (f.Get("update") is not { } node || YamlFields.Open(file, "update", node, errors) is not { } u)
        {
            return null;
        }
        var maxParallel = u.Int("max_parallel", 1, 10_000);
        var minHealthy = u.Int("min_healthy", 0, 10_000);
        var deadline = u.Duration("healthy_deadline", TimeSpan.FromSeconds(1));
        var revert = u.Bool("auto_revert");
        u.RefuseUnknown();
        var defaults = new UpdatePolicy();
        return new UpdatePolicy
        {
            MaxParallel = maxParallel ?? defaults.MaxParallel,
            MinHealthy = minHealthy,
            HealthyDeadline = deadline ?? defaults.HealthyDeadline,
            AutoRevert = revert ?? defaults.AutoRevert,
        };
    }

    public static IdleStopSpec? IdleStop(string file, YamlFields f, List<JobFileError> errors)
    {
        if (f.Get("idle_stop") is not { } node || YamlFields.Open(file, "idle_stop", node, errors) is not { } i)
        {
            return null;
        }
        var command = i.String("command", required: true, example: "'cat idle-seconds'");
        var after = i.Duration("after", TimeSpan.FromSeconds(1));
        if (after is null && !i.Has("after"))
        {
            i.Error(node, "missing field 'idle_stop.after'; write e.g. after: 30m");
        }
        i.RefuseUnknown();
        return command is null || after is null ? null : new IdleStopSpec { Command = command, After = after.Value };
    }
}
