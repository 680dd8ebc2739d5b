using System.Globalization;
using Sched.V1;

namespace Scheduler.FrameworkSdk;

/// <summary>
/// A fluent description of a task, turned into a <see cref="TaskInfo"/> against an offer:
/// <code>
/// var task = new TaskBuilder("hello-1").Shell("echo hello").Cpus(0.1).Mem(32).Build(offer);
/// </code>
/// Quantities are carved from the offer (see <see cref="OfferResources.TryCarve"/>), which also
/// picks concrete ports and fills in the agent id and allocation role.
/// </summary>
public sealed class TaskBuilder
{
    private readonly Dictionary<string, double> _scalars = new(StringComparer.Ordinal);
    private readonly List<ulong> _ports = [];
    private readonly List<Resource> _volumes = [];
    private readonly TaskInfo _task;

    /// <summary>Starts a task with the given id (unique within the framework).</summary>
    /// <param name="taskId">The task id: letters, digits, <c>-_.</c>.</param>
    public TaskBuilder(string taskId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(taskId);
        _task = new TaskInfo { TaskId = taskId, Name = taskId };
    }

    /// <summary>The scalar quantities asked for.</summary>
    internal IReadOnlyDictionary<string, double> Scalars => _scalars;

    /// <summary>Persistent volumes the task uses (whole, as offered).</summary>
    internal IReadOnlyList<Resource> Volumes => _volumes;

    /// <summary>How many ports to pick from the offer.</summary>
    internal int PortCount { get; private set; }

    /// <summary>Ports asked for by number.</summary>
    internal IReadOnlyCollection<ulong> SpecificPorts => _ports;

    /// <summary>Sets the human-readable name (default: the id).</summary>
    /// <param name="name">The name.</param>
    public TaskBuilder Name(string name)
    {
        _task.Name = name;
        return this;
    }

    /// <summary>Runs <paramref name="command"/> with <c>/bin/sh -c</c>.</summary>
    /// <param name="command">A shell command line.</param>
    public TaskBuilder Shell(string command)
    {
        _task.Command = Command();
        _task.Command.Shell = true;
        _task.Command.Value = command;
        _task.Command.Arguments.Clear();
        return this;
    }

    /// <summary>Runs <paramref name="executable"/> directly with <paramref name="arguments"/>
    /// (argv[0] is the executable).</summary>
    /// <param name="executable">The program (a path, or a name looked up on PATH).</param>
    /// <param name="arguments">Its arguments, without argv[0].</param>
    public TaskBuilder Argv(string executable, params string[] arguments)
    {
        _task.Command = Command();
        _task.Command.Shell = false;
        _task.Command.Value = executable;
        _task.Command.Arguments.Clear();
        _task.Command.Arguments.Add(executable);
        _task.Command.Arguments.Add(arguments);
        return this;
    }

    /// <summary>Sets an environment variable of the command.</summary>
    /// <param name="name">Variable name.</param>
    /// <param name="value">Its value.</param>
    public TaskBuilder Env(string name, string value)
    {
        Command().Env[name] = value;
        return this;
    }

    /// <summary>Gives the task a secret of a role (stored with <c>schedctl secret set</c>): as the
    /// environment variable <paramref name="env"/> and/or the file <c>.secrets/<paramref name="file"/></c>
    /// in its sandbox (tmpfs, removed when the task ends).</summary>
    /// <param name="name">The secret's name.</param>
    /// <param name="env">Environment variable to set; null for none.</param>
    /// <param name="file">File name under <c>.secrets/</c>; null for none.</param>
    /// <param name="role">The role the secret belongs to; null: the role of the task's resources.</param>
    public TaskBuilder Secret(string name, string? env = null, string? file = null, string? role = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (env is null && file is null)
        {
            throw new ArgumentException("give env, file or both: where the task receives the secret");
        }
        _task.Secrets.Add(new SecretRef { Name = name, Env = env ?? "", File = file ?? "", Role = role ?? "" });
        return this;
    }

    /// <summary>Runs the command as this Unix user.</summary>
    /// <param name="user">A user name.</param>
    public TaskBuilder User(string user)
    {
        Command().User = user;
        return this;
    }

    /// <summary>Fetches <paramref name="uri"/> into the sandbox before starting.</summary>
    /// <param name="uri">A <c>file://</c> or <c>http(s)://</c> URI.</param>
    /// <param name="executable">Mark the file executable.</param>
    /// <param name="extract">Extract archives.</param>
    public TaskBuilder Fetch(string uri, bool executable = false, bool extract = false)
    {
        Command().Uris.Add(new Sched.V1.Uri { Value = uri, Executable = executable, Extract = extract });
        return this;
    }

    /// <summary>Cores (fractional allowed).</summary>
    /// <param name="cpus">Cores, &gt; 0.</param>
    public TaskBuilder Cpus(double cpus) => Quantity("cpus", cpus);

    /// <summary>Memory in MiB.</summary>
    /// <param name="mib">MiB, &gt; 0.</param>
    public TaskBuilder Mem(double mib) => Quantity("mem", mib);

    /// <summary>Disk in MiB.</summary>
    /// <param name="mib">MiB, &gt; 0.</param>
    public TaskBuilder Disk(double mib) => Quantity("disk", mib);

    /// <summary>Whole GPUs.</summary>
    /// <param name="count">GPUs.</param>
    public TaskBuilder Gpus(int count) => Quantity("gpus", count);

    /// <summary>Any scalar resource.</summary>
    /// <param name="name">Resource name.</param>
    /// <param name="amount">Quantity, &gt;= 0.</param>
    public TaskBuilder Quantity(string name, double amount)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (!double.IsFinite(amount) || amount < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(amount), amount, $"The amount of '{name}' must be a finite number >= 0.");
        }
        _scalars[name] = amount;
        return this;
    }

    /// <summary>Picks <paramref name="count"/> ports from the offer (the lowest free ones).</summary>
    /// <param name="count">How many ports.</param>
    public TaskBuilder Ports(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        PortCount = count;
        return this;
    }

    /// <summary>Asks for these port numbers.</summary>
    /// <param name="ports">Port numbers that must be in the offer.</param>
    public TaskBuilder Port(params ulong[] ports)
    {
        _ports.AddRange(ports);
        return this;
    }

    /// <summary>Runs the task in an OCI container from <paramref name="image"/>
    /// (<c>oci:DIR:TAG</c>, <c>oci-archive:FILE:TAG</c> or <c>NAME:TAG</c>).</summary>
    /// <param name="image">The image reference.</param>
    /// <param name="runtime"><c>runc</c> or <c>crun</c>; null = the agent's choice.</param>
    public TaskBuilder Image(string image, string? runtime = null)
    {
        _task.Container = new ContainerInfo { Type = ContainerInfo.Types.Type.Oci, Oci = new OciInfo { Image = image, Runtime = runtime ?? "" } };
        return this;
    }

    /// <summary>
    /// Runs the task on the agent's mock executor (tests, simulations): no process, the same
    /// status path. <paramref name="runFor"/> null = run until killed.
    /// </summary>
    /// <param name="runFor">How long it runs (null: until killed).</param>
    /// <param name="exitCode">Its exit code.</param>
    /// <param name="failStart">Fail at start (TASK_FAILED, REASON_CONTAINER_LAUNCH_FAILED).</param>
    /// <param name="ignoreSigterm">Only the grace-period SIGKILL ends it.</param>
    public TaskBuilder Mock(TimeSpan? runFor = null, int exitCode = 0, bool failStart = false, bool ignoreSigterm = false)
    {
        _task.Container = new ContainerInfo { Type = ContainerInfo.Types.Type.Mock };
        _task.Labels["mock.run_ms"] = runFor is { } d ? ((long)d.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) : "-1";
        _task.Labels["mock.exit_code"] = exitCode.ToString(CultureInfo.InvariantCulture);
        if (failStart)
        {
            _task.Labels["mock.fail_start"] = "true";
        }
        if (ignoreSigterm)
        {
            _task.Labels["mock.ignore_sigterm"] = "true";
        }
        return this;
    }

    /// <summary>Time between SIGTERM and SIGKILL when the task is killed (default 3 s).</summary>
    /// <param name="grace">The grace period.</param>
    public TaskBuilder KillGrace(TimeSpan grace)
    {
        _task.KillPolicy = new KillPolicy { GracePeriodSeconds = grace.TotalSeconds };
        return this;
    }

    /// <summary>Kills the task (TASK_FAILED, REASON_MAX_COMPLETION_TIME_REACHED) after this long.</summary>
    /// <param name="limit">The limit.</param>
    public TaskBuilder MaxCompletion(TimeSpan limit)
    {
        _task.MaxCompletionSeconds = limit.TotalSeconds;
        return this;
    }

    /// <summary>A shell command health check: healthy while it exits 0.</summary>
    /// <param name="command">The check's shell command.</param>
    /// <param name="interval">Time between checks.</param>
    /// <param name="consecutiveFailures">Failures before the task is killed.</param>
    /// <param name="gracePeriod">Failures during this time after start do not count.</param>
    public TaskBuilder HealthCheckCommand(string command, TimeSpan interval, uint consecutiveFailures = 3, TimeSpan? gracePeriod = null)
    {
        _task.HealthCheck = new HealthCheck
        {
            Type = HealthCheck.Types.Type.Command,
            Command = new CommandInfo { Shell = true, Value = command },
            IntervalSeconds = interval.TotalSeconds,
            TimeoutSeconds = Math.Max(1, interval.TotalSeconds),
            ConsecutiveFailures = consecutiveFailures,
            GracePeriodSeconds = gracePeriod?.TotalSeconds ?? 0,
        };
        return this;
    }

    /// <summary>An HTTP health check: healthy while GET <paramref name="path"/> answers 2xx/3xx.</summary>
    /// <param name="port">The port the task listens on.</param>
    /// <param name="path">The path to GET.</param>
    /// <param name="interval">Time between checks.</param>
    /// <param name="consecutiveFailures">Failures before the task is killed.</param>
    public TaskBuilder HealthCheckHttp(uint port, string path, TimeSpan interval, uint consecutiveFailures = 3)
    {
        _task.HealthCheck = new HealthCheck
        {
            Type = HealthCheck.Types.Type.Http,
            Http = new HealthCheck.Types.Http { Port = port, Path = path },
            IntervalSeconds = interval.TotalSeconds,
            TimeoutSeconds = Math.Max(1, interval.TotalSeconds),
            ConsecutiveFailures = consecutiveFailures,
        };
        return this;
    }

    /// <summary>Adds a label (key/value metadata the master keeps with the task).</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value.</param>
    public TaskBuilder Label(string key, string value)
    {
        _task.Labels[key] = value;
        return this;
    }

    /// <summary>Uses a persistent volume of the offer (as the offer lists it, see
    /// <see cref="ResourceOperations.VolumesIn"/>): the task sees it at the volume's
    /// <c>container_path</c> in its sandbox, and data written there outlives the task.</summary>
    /// <param name="volume">A disk resource with <c>disk.persistence.id</c>.</param>
    public TaskBuilder Volume(Resource volume)
    {
        ArgumentNullException.ThrowIfNull(volume);
        if (volume.Disk?.Persistence is not { Id.Length: > 0 })
        {
            throw new ArgumentException("Not a persistent volume: the resource has no disk.persistence.id.", nameof(volume));
        }
        _volumes.Add(volume.Clone());
        return this;
    }

    /// <summary>Builds the task from <paramref name="offer"/>; throws <see cref="InvalidOperationException"/>
    /// when it does not fit.</summary>
    /// <param name="offer">The offer to carve the task from.</param>
    public TaskInfo Build(Offer offer)
    {
        var left = new OfferResources(offer);
        if (!left.TryCarve(this, out var task))
        {
            throw new InvalidOperationException($"Task '{_task.TaskId}' ({Wanted()}) does not fit in offer '{offer.Id}' ({OfferResources.Describe(offer.Resources)}).");
        }
        return task;
    }

    /// <summary>Builds the task with unreserved resources and no agent (for tests and for
    /// frameworks that set resources themselves). Ports must be given by number.</summary>
    public TaskInfo Build()
    {
        var resources = _scalars.Where(kv => kv.Value > 0).Select(kv => new Resource { Name = kv.Key, Scalar = kv.Value }).ToList();
        if (_ports.Count > 0)
        {
            var ports = new Resource { Name = "ports", Ranges = new Ranges() };
            ports.Ranges.Range.Add(_ports.Select(p => new Sched.V1.Range { Begin = p, End = p }));
            resources.Add(ports);
        }
        return BuildWith("", resources);
    }

    /// <summary>The task with this agent and these resources.</summary>
    internal TaskInfo BuildWith(string agentId, IEnumerable<Resource> resources)
    {
        if (_task.Command is null && _task.Container?.Type != ContainerInfo.Types.Type.Mock)
        {
            throw new InvalidOperationException($"Task '{_task.TaskId}' has no command: call Shell(…), Argv(…) or Mock(…).");
        }
        var task = _task.Clone();
        task.AgentId = agentId;
        task.Resources.Clear();
        task.Resources.Add(resources);
        task.Container ??= new ContainerInfo { Type = ContainerInfo.Types.Type.Process };
        return task;
    }

    private string Wanted()
    {
        var parts = _scalars.Select(kv => $"{kv.Key}:{kv.Value.ToString(CultureInfo.InvariantCulture)}").ToList();
        if (PortCount > 0)
        {
            parts.Add($"ports:{PortCount}");
        }
        return string.Join(";", parts);
    }

    private CommandInfo Command() => _task.Command ??= new CommandInfo();
}
