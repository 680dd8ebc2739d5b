using System.Globalization;
using Microsoft.Extensions.Logging;
using Sched.V1;
using Scheduler.FrameworkSdk;
using Scheduler.Jobs.Spec;
using Scheduler.Jobs.State;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Jobs.Engine;

/// <summary>
/// The jobs framework's state machine: job versions and instances in, placement decisions and
/// kills out. Every change happens under one lock and is saved (<see cref="JobStateStore"/>)
/// before the I/O it implies is done by the caller, so a task id is stored before its launch is
/// sent (a save that fails — this instance no longer leads, or the store did not confirm — throws,
/// and nothing it implied is sent). No I/O of its own except the store; time from the injected
/// <see cref="TimeProvider"/>.
/// </summary>
public sealed partial class JobsEngine
{
    private const int MaxEvents = 50;
    private readonly JobStateStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly JobsState _state;
    private readonly Dictionary<string, JobSpec> _specs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IReadOnlyDictionary<string, string>> _agents = new(StringComparer.Ordinal);

    /// <param name="store">Where every change is saved.</param>
    /// <param name="state">The state loaded from <paramref name="store"/>.</param>
    public JobsEngine(JobStateStore store, JobsState state, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(state);
        _store = store;
        _time = time;
        _logger = logger;
        _state = state;
        foreach (var job in _state.Jobs.Values)
        {
            _specs[job.Name] = SpecOf(job, job.Version);
        }
    }

    /// <summary>The framework id saved by an earlier run (to fail over to), or null.</summary>
    public string? FrameworkId
    {
        get
        {
            lock (_lock)
            {
                return _state.FrameworkId;
            }
        }
    }

    /// <summary>Records the framework id the master gave.</summary>
    public void SetFrameworkId(string id)
    {
        lock (_lock)
        {
            if (_state.FrameworkId != id)
            {
                _state.FrameworkId = id;
                _store.Save(_state);
            }
        }
    }

    /// <summary>The roles the jobs run in (the framework subscribes in all of them).</summary>
    public IReadOnlyList<string> Roles()
    {
        lock (_lock)
        {
            return _specs.Values.Select(s => s.Role).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        }
    }

    /// <summary>Instances to probe for idleness: (job, instance, command, environment).</summary>
    public IReadOnlyList<(string Job, string Instance, string Command, Dictionary<string, string> Env)> IdleProbes()
    {
        lock (_lock)
        {
            return _state.Jobs.Values.Where(j => !j.Stopped && _specs[j.Name].IdleStop is not null)
                .SelectMany(j => j.Instances.Where(i => i.State == InstanceStates.Running).Select(i => (j.Name, i.Id, _specs[j.Name].IdleStop!.Command, ProbeEnv(i))))
                .ToList();
        }
    }

    /// <summary>A probe says <paramref name="instance"/> has been idle <paramref name="seconds"/>;
    /// at the job's idle_stop.after it is stopped until started again.</summary>
    public EngineActions ReportIdle(string job, string instance, double seconds)
    {
        var actions = new EngineActions();
        lock (_lock)
        {
            if (!_state.Jobs.TryGetValue(job, out var record) || record.Instances.FirstOrDefault(i => i.Id == instance) is not { State: InstanceStates.Running } i)
            {
                return actions;
            }
            var spec = _specs[job];
            i.IdleSeconds = seconds;
            if (spec.IdleStop is { } idle && seconds >= idle.After.TotalSeconds)
            {
                AddEvent(record, $"instance {i.Id} idle for {seconds.ToString("0", CultureInfo.InvariantCulture)}s (limit {YamlFields.Format(idle.After)}); stopping it");
                Kill(spec, i, "idle", actions);
                _store.Save(_state);
            }
        }
        return actions;
    }

    private static Dictionary<string, string> ProbeEnv(InstanceRecord i)
    {
        var env = new Dictionary<string, string>(i.Endpoint, StringComparer.Ordinal)
        {
            ["HOST"] = i.Hostname,
            ["JOB_INSTANCE"] = i.Id,
            ["TASK_ID"] = i.TaskId ?? "",
        };
        return env;
    }

    /// <summary>Tasks the engine believes live (to reconcile after a restart or failover).</summary>
    public IReadOnlyList<(string TaskId, string AgentId)> LiveTasks()
    {
        lock (_lock)
        {
            return _state.Jobs.Values.SelectMany(j => j.Instances)
                .Where(i => i.TaskId is not null && InstanceStates.HasTask(i.State))
                .Select(i => (i.TaskId!, i.AgentId)).ToList();
        }
    }

    /// <summary>Validates a job file and says what submitting it would change.</summary>
    public JobPlan Plan(string yaml, string fileName)
    {
        var spec = JobFileParser.Parse(yaml, fileName);
        lock (_lock)
        {
            return PlanLocked(spec);
        }
    }

    /// <summary>Validates and stores a job file as the job's next version, then runs it.</summary>
    public SubmitJobResponse Submit(string yaml, string fileName)
    {
        var spec = JobFileParser.Parse(yaml, fileName);
        lock (_lock)
        {
            var plan = PlanLocked(spec);
            foreach (var parent in spec.DependsOn.Where(p => !_state.Jobs.ContainsKey(p)))
            {
                throw new JobFileException([new JobFileError(fileName, 1, 1, $"depends_on names job '{parent}', which is not submitted; submit it first")]);
            }
            var now = _time.GetUtcNow();
            if (!_state.Jobs.TryGetValue(spec.Name, out var job))
            {
                job = new JobRecord { Name = spec.Name, Started = now };
                _state.Jobs[spec.Name] = job;
            }
            else if (plan.Action == "unchanged" && !job.Stopped)
            {
                return new SubmitJobResponse { Name = spec.Name, Version = (uint)job.Version, Plan = plan };
            }
            var version = job.Versions.Count == 0 ? 1 : job.Versions.Max(v => v.Version) + 1;
            job.Versions.Add(new JobVersionRecord { Version = version, Submitted = now, JobFile = yaml, FileName = fileName });
            Activate(job, spec, version, now);
            _store.Save(_state);
            return new SubmitJobResponse { Name = spec.Name, Version = (uint)version, Plan = plan };
        }
    }

    /// <summary>Sets the instance count (service) or task count (batch, cron).</summary>
    public ScaleJobResponse Scale(string name, int count, EngineActions actions)
    {
        lock (_lock)
        {
            var job = Find(name);
            var spec = _specs[name];
            var previous = job.ScaledTo ?? spec.Desired;
            if (spec.InstanceNames.Count > 0)
            {
                throw new ArgumentException($"job {name} has named instances (instance_names); change the list in its file instead of scaling");
            }
            job.ScaledTo = count;
            AddEvent(job, $"scaled from {previous} to {count}");
            if (spec.Type != JobType.Cron)
            {
                ReconcileCount(job, spec, count, actions);
                if (spec.Type == JobType.Batch && job.Outcome == "complete" && count > previous)
                {
                    job.Outcome = "running";
                }
            }
            _store.Save(_state);
            return new ScaleJobResponse { Previous = (uint)previous, Count = (uint)count };
        }
    }

    /// <summary>Kills the job's tasks and stops it; with <paramref name="purge"/>, forgets it once its tasks are gone.</summary>
    public StopJobResponse Stop(string name, bool purge, EngineActions actions)
    {
        lock (_lock)
        {
            var job = Find(name);
            var spec = _specs[name];
            var dependents = _specs.Values.Where(s => s.DependsOn.Contains(name)).Select(s => s.Name).ToList();
            if (purge && dependents.Count > 0)
            {
                throw new InvalidOperationException($"jobs {string.Join(", ", dependents)} depend on {name}; stop or change them first");
            }
            job.Stopped = true;
            var killed = 0;
            foreach (var i in job.Instances)
            {
                if (InstanceStates.HasTask(i.State))
                {
                    killed += Kill(spec, i, "stop", actions) ? 1 : 0;
                }
                else if (i.State is InstanceStates.Pending or InstanceStates.Backoff)
                {
                    i.State = InstanceStates.Stopped;
                }
            }
            foreach (var run in job.Runs.Where(r => r.State is "running" or "waiting"))
            {
                EndRun(job, run, "failed", "the job was stopped");
            }
            job.RollingFrom = 0;
            AddEvent(job, purge ? "stopped and purged" : "stopped");
            if (purge)
            {
                _state.Jobs.Remove(name);
                _specs.Remove(name);
            }
            _store.Save(_state);
            return new StopJobResponse { Killed = (uint)killed };
        }
    }

    /// <summary>Replaces every instance of a service, one rollout step at a time (as an update
    /// does); starts a run of a cron or batch job now.</summary>
    public RestartJobResponse Restart(string name, EngineActions actions)
    {
        lock (_lock)
        {
            var job = Find(name);
            var spec = _specs[name];
            var now = _time.GetUtcNow();
            if (job.Stopped)
            {
                job.Stopped = false;
                Activate(job, spec, job.Version, now);
                _store.Save(_state);
                return new RestartJobResponse { Restarting = (uint)spec.Desired };
            }
            var n = 0;
            if (spec.Type == JobType.Service)
            {
                // A restart is a rollout to the same version: every instance is marked old.
                foreach (var i in job.Instances.Where(i => i.State != InstanceStates.Idle))
                {
                    i.Version = 0;
                    n++;
                }
                job.RollingFrom = job.Version;
                AddEvent(job, $"restart of {n} instances requested");
            }
            else
            {
                StartRun(job, spec, now, now, actions);
                n = spec.Count;
            }
            _store.Save(_state);
            return new RestartJobResponse { Restarting = (uint)n };
        }
    }

    /// <summary>Starts an idle-stopped or stopped named instance of a service.</summary>
    public StartInstanceResponse StartInstance(string name, string instance)
    {
        lock (_lock)
        {
            var job = Find(name);
            var spec = _specs[name];
            if (spec.Type != JobType.Service)
            {
                throw new ArgumentException($"job {name} is a {YamlFields.Snake(spec.Type.ToString())} job; only service instances start on request");
            }
            var i = job.Instances.FirstOrDefault(x => x.Id == instance || x.Id == $"{name}-{instance}")
                ?? throw new KeyNotFoundException($"job {name} has no instance {instance}; its instances are {string.Join(", ", job.Instances.Select(x => x.Id))}");
            if (i.State is InstanceStates.Idle or InstanceStates.Stopped or InstanceStates.Failed)
            {
                i.State = InstanceStates.Pending;
                i.Attempts = 0;
                i.NotBefore = null;
                i.IdleSeconds = 0;
                AddEvent(job, $"instance {i.Id} started on request");
                if (job.Stopped)
                {
                    job.Stopped = false;
                }
                _store.Save(_state);
            }
            return new StartInstanceResponse { Instance = i.Id };
        }
    }

    /// <summary>The role of a job's current version; null when there is no such job.</summary>
    public string? RoleOf(string name)
    {
        lock (_lock)
        {
            return _specs.TryGetValue(name, out var spec) ? spec.Role : null;
        }
    }

    public ListJobsResponse List()
    {
        lock (_lock)
        {
            var response = new ListJobsResponse();
            response.Jobs.Add(_state.Jobs.Values.OrderBy(j => j.Name, StringComparer.Ordinal).Select(j => Summary(j, _specs[j.Name])));
            return response;
        }
    }

    public GetJobResponse Get(string name, bool history)
    {
        lock (_lock)
        {
            var job = Find(name);
            var spec = _specs[name];
            var info = new JobInfo { Summary = Summary(job, spec), JobFile = job.Versions.First(v => v.Version == job.Version).JobFile };
            foreach (var i in job.Instances)
            {
                var ji = new JobInstance
                {
                    Id = i.Id,
                    TaskId = i.TaskId ?? "",
                    Version = (uint)i.Version,
                    State = i.State,
                    AgentId = i.AgentId,
                    Hostname = i.Hostname,
                    Attempts = (uint)i.Attempts,
                    PendingReason = i.State == InstanceStates.Pending ? i.PendingReason ?? "waiting for offers" : "",
                    Message = i.Message ?? "",
                    FrameworkId = _state.FrameworkId ?? "",
                };
                if (i.Healthy is { } h)
                {
                    ji.Healthy = h;
                }
                info.Instances.Add(ji);
            }
            info.Events.Add(job.Events.Select(e => new JobEvent { Time = Rfc3339(e.Time), Message = e.Message }));
            if (history)
            {
                info.Versions.Add(job.Versions.Select(v => new JobVersion { Version = (uint)v.Version, Submitted = Rfc3339(v.Submitted), JobFile = v.JobFile }));
                info.Runs.Add(job.Runs.Select(r => new JobRun { Id = r.Id, Started = Rfc3339(r.Started), Ended = r.Ended is { } e ? Rfc3339(e) : "", State = r.State, Message = r.Message }));
            }
            return new GetJobResponse { Job = info };
        }
    }

    private JobRecord Find(string name) =>
        _state.Jobs.TryGetValue(name, out var job) ? job : throw new KeyNotFoundException($"no job named {name}; 'schedctl job list' shows the jobs");

    private JobSpec SpecOf(JobRecord job, int version)
    {
        var v = job.Versions.First(x => x.Version == version);
        return JobFileParser.Parse(v.JobFile, v.FileName);
    }

    private JobSummary Summary(JobRecord job, JobSpec spec)
    {
        var healthyNeeded = spec.Task.HealthCheck is not null;
        var s = new JobSummary
        {
            Name = job.Name,
            Type = YamlFields.Snake(spec.Type.ToString()),
            Role = spec.Role,
            Version = (uint)job.Version,
            Desired = (uint)(job.ScaledTo ?? spec.Desired),
            Running = (uint)job.Instances.Count(i => i.State == InstanceStates.Running),
            Healthy = (uint)job.Instances.Count(i => IsHealthy(i, healthyNeeded)),
            Succeeded = (uint)(spec.Type == JobType.Cron ? job.Runs.Count(r => r.State == "succeeded") : job.Instances.Count(i => i.State == InstanceStates.Finished)),
            Failed = (uint)(spec.Type == JobType.Cron ? job.Runs.Count(r => r.State == "failed") : job.Instances.Count(i => i.State == InstanceStates.Failed)),
            NextRun = job.NextRun is { } n && !job.Stopped ? Rfc3339(n) : "",
        };
        s.State = job.Stopped ? "stopped"
            : job.RollingFrom != 0 ? "deploying"
            : spec.Type == JobType.Batch ? job.Outcome
            : spec.Type == JobType.Cron ? (job.Runs.Any(r => r.State is "running" or "waiting") ? "running" : "scheduled")
            : job.Instances.Any(i => i.State == InstanceStates.Pending) ? "pending" : "running";
        return s;
    }

    internal static bool IsHealthy(InstanceRecord i, bool healthCheck) =>
        i.State == InstanceStates.Running && (!healthCheck || i.Healthy == true);

    private void AddEvent(JobRecord job, string message)
    {
        job.Events.Add(new EventRecord { Time = _time.GetUtcNow(), Message = message });
        if (job.Events.Count > MaxEvents)
        {
            job.Events.RemoveRange(0, job.Events.Count - MaxEvents);
        }
        JobsLog.JobEvent(_logger, job.Name, message);
    }

    private string NextTaskId(InstanceRecord i) =>
        $"{i.Id}.{(_state.NextTaskNumber++).ToString(CultureInfo.InvariantCulture)}";

    private static string Rfc3339(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
