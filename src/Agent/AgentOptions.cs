using Scheduler.Channels.Tls;
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

    /// <summary>TLS (<c>--tls-cert --tls-key --tls-ca</c>): the agent's file service serves the
    /// certificate, and the agent presents it to the masters, whose certificates must chain to
    /// the CA. Null = plaintext.</summary>
    public TlsFiles? Tls { get; set; }

    /// <summary>The bearer token the agent presents to the masters (its principal); null: none.</summary>
    public string? Token { get; set; }

    /// <summary>The masters' token key (<c>--token-key</c>; the public key suffices): callers of
    /// the file service must present a token it signed, or a client certificate of the cluster's
    /// CA, and see only the sandboxes they may (<see cref="AclsFile"/>). Null: the file service
    /// serves anyone who reaches it.</summary>
    public string? TokenKeyFile { get; set; }

    /// <summary>The ACL file (<c>--acls</c>, the masters' format) deciding who may read which
    /// sandboxes (<c>access_sandboxes</c>); null: the built-in policy (owners only, and superusers
    /// of no one). Needs <see cref="TokenKeyFile"/>.</summary>
    public string? AclsFile { get; set; }

    /// <summary>The only OS users tasks may run as on this agent (<c>--allowed-task-users</c>);
    /// empty: any the masters' ACLs allow.</summary>
    public List<string> AllowedTaskUsers { get; } = [];

    /// <summary>The problems <see cref="AgentOptionsValidator"/> finds, in words (empty = fine).</summary>

    public IReadOnlyList<string> Validate() => AgentOptionsValidator.Problems(this);

    /// <summary>Copies every setting to <paramref name="target"/> (the options pattern builds its own instance).</summary>
    public void CopyTo(AgentOptions target)
    {
        ArgumentNullException.ThrowIfNull(target);
        target.Token = Token;
        target.TokenKeyFile = TokenKeyFile;
        target.AclsFile = AclsFile;
        target.AllowedTaskUsers.Clear();
        target.AllowedTaskUsers.AddRange(AllowedTaskUsers);
        target.Masters.Clear();
        target.Masters.AddRange(Masters);
        target.Listen = Listen;
        target.MetricsListen = MetricsListen;
        target.WorkDir = WorkDir;
        target.Resources = Resources;
        target.Attributes = Attributes;
        target.Isolation = Isolation;
        target.Runtime = Runtime;
        target.Hostname = Hostname;
        target.SupervisorCommand.Clear();
        target.SupervisorCommand.AddRange(SupervisorCommand);
        target.SupervisorPool = SupervisorPool;
        target.DefaultKillGrace = DefaultKillGrace;
        target.TaskPidsLimit = TaskPidsLimit;
        target.StatusRetryMin = StatusRetryMin;
        target.StatusRetryMax = StatusRetryMax;
        target.RegistrationTimeout = RegistrationTimeout;
        target.ReconnectMin = ReconnectMin;
        target.ReconnectMax = ReconnectMax;
        target.UsageEveryHeartbeats = UsageEveryHeartbeats;
        target.SandboxMaxAge = SandboxMaxAge;
        target.SandboxDiskPressure = SandboxDiskPressure;
        target.FetchAllowDirs.Clear();
        target.FetchAllowDirs.AddRange(FetchAllowDirs);
        target.MaxImageBytes = MaxImageBytes;
        target.Tls = Tls;
    }
}
