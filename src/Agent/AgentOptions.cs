namespace Scheduler.Agent;

/// <summary>Settings of one agent daemon (see CONTRACTS: <c>schedctl agent run</c>).</summary>
public sealed class AgentOptions
{
    /// <summary>Masters to register with (<c>host:port</c>); the agent cycles through them and
    /// follows the <c>sched-leader</c> hint.</summary>
    public List<string> Masters { get; } = [];

    /// <summary>Where AgentFiles is served (<c>host:port</c>, port 0 = any free port).</summary>
    public string Listen { get; set; } = "127.0.0.1:0";

    /// <summary>IP:port of the Prometheus scrape endpoint (<c>GET /metrics</c>); null: none.</summary>
    public string? MetricsListen { get; set; }

    /// <summary>Work directory: checkpoints under <c>meta/</c>, sandboxes under <c>sandboxes/</c>.</summary>
    public string WorkDir { get; set; } = "";

    /// <summary>Mesos syntax (<c>cpus:4;mem:4096;disk:10000;ports:[31000-32000]</c>); empty = detect.</summary>
    public string Resources { get; set; } = "";

    /// <summary>Attributes (<c>rack:r1;zone:a</c>).</summary>
    public string Attributes { get; set; } = "";

    /// <summary><c>auto</c> (cgroups when available, as root), <c>cgroups</c> (required) or <c>none</c>.</summary>
    public string Isolation { get; set; } = "auto";

    /// <summary>OCI runtime: <c>auto</c>, <c>runc</c> or <c>crun</c>.</summary>
    public string Runtime { get; set; } = "auto";

    /// <summary>Hostname reported to the master; default the machine's.</summary>
    public string? Hostname { get; set; }

    /// <summary>
    /// How to start a supervisor: the program and leading arguments, to which
    /// <c>--run-dir DIR</c> is appended. Empty: the native <c>sched-supervisor</c> installed beside
    /// the agent's assembly.
    /// </summary>
    public List<string> SupervisorCommand { get; } = [];

    /// <summary>Supervisors kept started ahead of need (0: start one per launch).</summary>
    public int SupervisorPool { get; set; } = 2;

    /// <summary>Default kill grace period when the task and the kill request set none.</summary>
    public TimeSpan DefaultKillGrace { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>Process (pids) limit per task container.</summary>
    public int TaskPidsLimit { get; set; } = 4096;

    /// <summary>Resend interval bounds for unacknowledged status updates.</summary>
    public TimeSpan StatusRetryMin { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan StatusRetryMax { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a master has to answer a registration with <c>registered</c> before the agent
    /// leaves it for the next one. A frozen master (SIGSTOPped, or wedged) still accepts TCP
    /// connections, so without this bound the agent would wait on it forever.
    /// </summary>
    public TimeSpan RegistrationTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Reconnect backoff bounds (jittered, doubling).</summary>
    public TimeSpan ReconnectMin { get; set; } = TimeSpan.FromMilliseconds(500);

    public TimeSpan ReconnectMax { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Send usage every this many heartbeats.</summary>
    public int UsageEveryHeartbeats { get; set; } = 3;

    /// <summary>Sandboxes of terminal, acknowledged tasks are removed after this long.</summary>
    public TimeSpan SandboxMaxAge { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Above this fraction of the work dir's disk used, the oldest sandboxes go first.</summary>
    public double SandboxDiskPressure { get; set; } = 0.90;

    /// <summary>
    /// Directories whose regular files tasks may fetch with <c>file://</c> URIs
    /// (<c>--fetch-allow-dir</c>, repeatable). None by default: the agent reads as root, so a
    /// <c>file://</c> URI must not reach host files a task's user could not read; operators list
    /// only directories of artifacts meant for tasks. Symbolic links in them are not followed.
    /// </summary>
    public List<string> FetchAllowDirs { get; } = [];

    /// <summary>Largest unpacked image accepted (bytes).</summary>
    public long MaxImageBytes { get; set; } = 4L << 30;

    /// <summary>Validates the options; returns human-readable problems (empty = fine).</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(WorkDir))
        {
            problems.Add("WorkDir is required: pass --work-dir DIR (a directory the agent owns).");
        }
        foreach (var dir in FetchAllowDirs)
        {
            if (!Path.IsPathFullyQualified(dir) || Path.TrimEndingDirectorySeparator(dir) == "/")
            {
                problems.Add($"--fetch-allow-dir '{dir}' must be an absolute path of a directory other than /.");
            }
        }
        if (Isolation is not ("auto" or "cgroups" or "none"))
        {
            problems.Add($"Isolation '{Isolation}' is not one of auto, cgroups, none.");
        }
        if (Runtime is not ("auto" or "runc" or "crun"))
        {
            problems.Add($"Runtime '{Runtime}' is not one of auto, runc, crun.");
        }
        foreach (var m in Masters)
        {
            if (!Endpoints.TryParse(m, out _, out _))
            {
                problems.Add($"Master address '{m}' is not host:port.");
            }
        }
        if (!Endpoints.TryParse(Listen, out _, out _))
        {
            problems.Add($"Listen address '{Listen}' is not host:port.");
        }
        if (MetricsListen is { Length: > 0 } metrics && (!Endpoints.TryParse(metrics, out var metricsHost, out _)
            || (metricsHost != "localhost" && !System.Net.IPAddress.TryParse(metricsHost.Trim('[', ']'), out _))))
        {
            problems.Add($"Metrics address '{metrics}' is not IP:port (e.g. 0.0.0.0:9106).");
        }
        return problems;
    }
}
