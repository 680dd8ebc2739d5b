using Scheduler.Channels.Tls;
using System.Net;
using Microsoft.Extensions.Options;

namespace Scheduler.Master;

/// <summary>Settings of a master daemon (see CONTRACTS.md "Entry points").</summary>
public sealed class MasterOptions
{
    /// <summary>host:port to serve gRPC on; port 0 picks a free port.</summary>
    public string Listen { get; set; } = "127.0.0.1:5050";

    /// <summary>Directory for the embedded registry and other state.</summary>
    public string WorkDir { get; set; } = "";

    /// <summary>host:port other parties use to reach this master; default: the bound listen address.</summary>
    public string? Advertise { get; set; }

    /// <summary>etcd client URLs; empty: embedded file registry and standalone election.</summary>
    public IList<string> EtcdEndpoints { get; } = [];

    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan AgentTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Upper bound on agent heartbeats per second across the cluster: once the cluster has had N
    /// agents, agents are told (at registration and in every ping) an interval of
    /// max(<see cref="HeartbeatInterval"/>, N ÷ this), and the agent timeout grows in proportion
    /// (<see cref="AgentTimeout"/> × interval ÷ <see cref="HeartbeatInterval"/>). Liveness traffic
    /// then stays bounded as the cluster grows (10,000 agents at the default: a heartbeat every
    /// 10 s, timeout 50 s) while small clusters keep fast failure detection. The interval does not
    /// shrink again while the master runs. 0 = no bound.
    /// </summary>
    public int MaxAgentHeartbeatsPerSecond { get; set; } = 1000;

    public TimeSpan FrameworkHeartbeatInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Outstanding offers are rescinded after this long; null: never.</summary>
    public TimeSpan? OfferTimeout { get; set; }

    public TimeSpan AllocationInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>After becoming leader, how long to wait for agents to re-register. Frameworks get
    /// at least as long to re-subscribe: a recovered framework is not removed before this has
    /// passed since the failover, whatever its own (possibly zero) failover timeout.</summary>
    public TimeSpan AgentReregisterTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Leader lease TTL on etcd (whole seconds, at least 2): a crashed leader is replaced about this
    /// long after its last renewal, and a leader that cannot renew for TTL·5/6 steps down. Default
    /// 2 s (etcd's minimum with its default raft timings); measured in bench/Failover to give a new
    /// leader in under 2.3 s without spurious leader changes under load.
    /// Ignored without etcd.
    /// </summary>
    public TimeSpan LeaseTtl { get; set; } = DefaultLeaseTtl;

    /// <summary>The default of <see cref="LeaseTtl"/>.</summary>
    public static readonly TimeSpan DefaultLeaseTtl = TimeSpan.FromSeconds(2);

    /// <summary>Serve callers that present no credentials, with every action allowed. For local,
    /// single-user use only: anyone who reaches the port owns the cluster.</summary>
    public bool AllowAnonymous { get; set; }

    /// <summary>The ECDSA key (PEM) that signs and checks bearer tokens, shared by the masters of
    /// a cluster; created (mode 0600) when missing. Null: <c>WORKDIR/token-key.pem</c>.</summary>
    public string? TokenKeyFile { get; set; }

    /// <summary>The ACL file (YAML; see docs/security.md), read again when it changes. Null: the
    /// built-in policy (<c>admin</c> is a superuser, each principal acts on its own objects).</summary>
    public string? AclsFile { get; set; }

    /// <summary>The AES-256 key (base64) that encrypts role secrets in the registry, shared by the
    /// masters of a cluster; created (mode 0600) when missing. Null: <c>WORKDIR/secrets.key</c>.</summary>
    public string? SecretsKeyFile { get; set; }

    /// <summary>Longest lifetime of a token issued by <c>Operator.CreateToken</c>.</summary>
    public TimeSpan MaxTokenTtl { get; set; } = TimeSpan.FromDays(366);

    /// <summary>etcd user (etcd authentication); null: no authentication.</summary>
    public string? EtcdUsername { get; set; }

    /// <summary>Password of <see cref="EtcdUsername"/>.</summary>
    public string? EtcdPassword { get; set; }

    /// <summary>
    /// Largest gRPC message the master sends or accepts (bytes; default 4 MiB, gRPC's usual
    /// limit, which clients such as the SDK also apply to what they receive). Events the master
    /// batches (offers of one allocation cycle) are split to stay at or under a quarter of it.
    /// </summary>
    public int MaxMessageSize { get; set; } = DefaultMaxMessageSize;

    /// <summary>The default of <see cref="MaxMessageSize"/>.</summary>
    public const int DefaultMaxMessageSize = 4 * 1024 * 1024;

    /// <summary>Bound on how fast the agent timeout marks agents unreachable; null: no bound.
    /// Agents past their timeout while the bound holds stay registered until their turn.</summary>
    public AgentRemovalRate? AgentRemovalRateLimit { get; set; }

    /// <summary>An agent unreachable for longer than this is forgotten: its registry record deleted
    /// and its tasks dropped (Mesos' registry_max_agent_age). Default 14 days.</summary>
    public TimeSpan MaxUnreachableAgentAge { get; set; } = TimeSpan.FromDays(14);

    /// <summary>At most this many unreachable agents are remembered; beyond it the longest lost are
    /// forgotten (Mesos' registry_max_agent_count). Default 100,000.</summary>
    public int MaxUnreachableAgents { get; set; } = 100_000;

    /// <summary>Completed tasks kept per framework for inspection.</summary>
    public int MaxCompletedTasksPerFramework { get; set; } = 1000;

    /// <summary>Removed (torn-down) frameworks whose completed tasks stay visible in
    /// <c>GetTasks</c>/<c>GetState</c> (Mesos' max_completed_frameworks), oldest forgotten first.
    /// Kept in memory only: a new leader starts without them.</summary>
    public int MaxCompletedFrameworks { get; set; } = 50;

    /// <summary>At most this many removed frameworks keep a registry tombstone (which makes every
    /// later leader refuse the id, and kill the framework's tasks on agents coming back); beyond it
    /// the oldest are deleted. Default 10,000. A framework id is generated, so a forgotten one comes
    /// back only from a scheduler that kept it past thousands of later removals.</summary>
    public int MaxRemovedFrameworks { get; set; } = 10_000;

    /// <summary>IP:port of the Prometheus scrape endpoint (<c>GET /metrics</c>, HTTP/1.1); null: none.</summary>
    public string? MetricsListen { get; set; }

    /// <summary>Longest failover timeout a framework may ask for (<c>--max-failover-timeout</c>):
    /// a disconnected framework's tasks and its registry record are kept that long.</summary>
    public TimeSpan MaxFailoverTimeout { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Most roles one framework may subscribe with (<c>--max-roles-per-framework</c>).
    /// 1024: a framework that gives each user a role (the JupyterHub spawner's <c>notebooks/USER</c>)
    /// serves that many users at once; each role costs the allocator one client node and the
    /// framework's registry record a few bytes.</summary>
    public int MaxRolesPerFramework { get; set; } = 1024;

    /// <summary>Most distinct resource names one agent may offer (<c>--max-agent-resource-kinds</c>):
    /// each name is a column in every allocator vector.</summary>
    public int MaxAgentResourceKinds { get; set; } = 32;

    /// <summary>TLS of the master's endpoint (<c>--tls-cert --tls-key --tls-ca</c>): null = plaintext.
    /// Client certificates are asked for and must chain to the CA when presented; agents must
    /// present one, frameworks and operators may authenticate otherwise.</summary>
    public TlsFiles? Tls { get; set; }

    /// <summary>Copies every setting into <paramref name="target"/>.</summary>
    public void CopyTo(MasterOptions target)
    {
        ArgumentNullException.ThrowIfNull(target);
        target.Listen = Listen;
        target.WorkDir = WorkDir;
        target.Advertise = Advertise;
        target.EtcdEndpoints.Clear();
        foreach (var e in EtcdEndpoints)
        {
            target.EtcdEndpoints.Add(e);
        }
        target.HeartbeatInterval = HeartbeatInterval;
        target.AgentTimeout = AgentTimeout;
        target.MaxAgentHeartbeatsPerSecond = MaxAgentHeartbeatsPerSecond;
        target.FrameworkHeartbeatInterval = FrameworkHeartbeatInterval;
        target.OfferTimeout = OfferTimeout;
        target.AllocationInterval = AllocationInterval;
        target.AgentReregisterTimeout = AgentReregisterTimeout;
        target.MaxCompletedTasksPerFramework = MaxCompletedTasksPerFramework;
        target.MaxCompletedFrameworks = MaxCompletedFrameworks;
        target.MaxRemovedFrameworks = MaxRemovedFrameworks;
        target.MaxMessageSize = MaxMessageSize;
        target.MaxUnreachableAgentAge = MaxUnreachableAgentAge;
        target.MaxUnreachableAgents = MaxUnreachableAgents;
        target.AgentRemovalRateLimit = AgentRemovalRateLimit;
        target.LeaseTtl = LeaseTtl;
        target.EtcdUsername = EtcdUsername;
        target.EtcdPassword = EtcdPassword;
        target.MetricsListen = MetricsListen;
        target.MaxFailoverTimeout = MaxFailoverTimeout;
        target.MaxRolesPerFramework = MaxRolesPerFramework;
        target.MaxAgentResourceKinds = MaxAgentResourceKinds;
        target.Tls = Tls;
        target.AllowAnonymous = AllowAnonymous;
        target.TokenKeyFile = TokenKeyFile;
        target.AclsFile = AclsFile;
        target.MaxTokenTtl = MaxTokenTtl;
        target.SecretsKeyFile = SecretsKeyFile;
    }

    /// <summary>Parses <c>host:port</c> (IPv4, [IPv6] or a name resolving to loopback/any).</summary>
    public static bool TryParseEndpoint(string text, out IPEndPoint endpoint)
    {
        endpoint = null!;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), out var port) || port is < 0 or > 65535)
        {
            return false;
        }
        var host = text[..colon].Trim('[', ']');
        IPAddress? address;
        if (host is "localhost")
        {
            address = IPAddress.Loopback;
        }
        else if (host is "*" or "0.0.0.0")
        {
            address = IPAddress.Any;
        }
        else if (!IPAddress.TryParse(host, out address))
        {
            return false;
        }
        endpoint = new IPEndPoint(address, port);
        return true;
    }
}

/// <summary>Checks <see cref="MasterOptions"/> at start-up, saying what to fix.</summary>
public sealed class MasterOptionsValidator : IValidateOptions<MasterOptions>
{
    public ValidateOptionsResult Validate(string? name, MasterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        if (!MasterOptions.TryParseEndpoint(options.Listen, out _))
        {
            errors.Add($"Listen '{options.Listen}' is not HOST:PORT with an IP address (or localhost) and a port 0-65535.");
        }
        if (string.IsNullOrWhiteSpace(options.WorkDir))
        {
            errors.Add("WorkDir is required: give a directory for the master's registry (--work-dir).");
        }
        if (options.Advertise is { Length: > 0 } adv && !adv.Contains(':', StringComparison.Ordinal))
        {
            errors.Add($"Advertise '{adv}' must be HOST:PORT.");
        }
        CheckPositive(errors, nameof(options.HeartbeatInterval), options.HeartbeatInterval);
        CheckPositive(errors, nameof(options.AgentTimeout), options.AgentTimeout);
        CheckPositive(errors, nameof(options.FrameworkHeartbeatInterval), options.FrameworkHeartbeatInterval);
        CheckPositive(errors, nameof(options.AllocationInterval), options.AllocationInterval);
        CheckPositive(errors, nameof(options.MaxUnreachableAgentAge), options.MaxUnreachableAgentAge);
        if (options.MaxUnreachableAgents < 0)
        {
            errors.Add($"MaxUnreachableAgents {options.MaxUnreachableAgents} is negative: give 0 or more.");
        }
        if (options.MaxMessageSize < 16 * 1024)
        {
            errors.Add($"MaxMessageSize {options.MaxMessageSize} is too small: give at least 16384 bytes (default {MasterOptions.DefaultMaxMessageSize}).");
        }
        if (options.AgentReregisterTimeout < TimeSpan.Zero)
        {
            errors.Add("AgentReregisterTimeout must not be negative.");
        }
        if (options.OfferTimeout is { } ot && ot <= TimeSpan.Zero)
        {
            errors.Add("OfferTimeout must be positive (or unset to keep offers until used).");
        }
        CheckPositive(errors, nameof(options.MaxFailoverTimeout), options.MaxFailoverTimeout);
        if (options.MaxRolesPerFramework < 1)
        {
            errors.Add($"MaxRolesPerFramework must be at least 1; got {options.MaxRolesPerFramework}.");
        }
        if (options.MaxAgentResourceKinds < 1)
        {
            errors.Add($"MaxAgentResourceKinds must be at least 1; got {options.MaxAgentResourceKinds}.");
        }
        if (options.MaxAgentHeartbeatsPerSecond < 0)
        {
            errors.Add($"MaxAgentHeartbeatsPerSecond must be 0 (no bound) or positive; got {options.MaxAgentHeartbeatsPerSecond}.");
        }
        if (options.AgentTimeout < options.HeartbeatInterval)
        {
            errors.Add($"AgentTimeout ({options.AgentTimeout}) must be at least HeartbeatInterval ({options.HeartbeatInterval}).");
        }
        if (options.LeaseTtl < TimeSpan.FromSeconds(2) || options.LeaseTtl.Ticks % TimeSpan.TicksPerSecond != 0 || options.LeaseTtl > TimeSpan.FromMinutes(5))
        {
            errors.Add($"LeaseTtl must be a whole number of seconds from 2 to 300 (etcd's minimum lease is 2 s with its default raft timings); got {options.LeaseTtl.TotalSeconds} s.");
        }
        CheckPositive(errors, nameof(options.MaxTokenTtl), options.MaxTokenTtl);
        if (options.AclsFile is { Length: > 0 } acls && !File.Exists(acls))
        {
            errors.Add($"AclsFile '{acls}' does not exist: give the path of an ACL file (see docs/security.md).");
        }
        if (options.EtcdUsername is { Length: > 0 } && string.IsNullOrEmpty(options.EtcdPassword))
        {
            errors.Add("EtcdUsername needs EtcdPassword (etcd authentication takes both).");
        }
        if (options.MetricsListen is { Length: > 0 } metrics && !MasterOptions.TryParseEndpoint(metrics, out _))
        {
            errors.Add($"MetricsListen '{metrics}' is not HOST:PORT with an IP address (or localhost) and a port 0-65535.");
        }
        if (options.Tls is { Any: true } tls && (string.IsNullOrWhiteSpace(tls.Certificate) || string.IsNullOrWhiteSpace(tls.Key) || string.IsNullOrWhiteSpace(tls.Ca)))
        {
            errors.Add("Tls needs the certificate, its key and the CA together (--tls-cert, --tls-key, --tls-ca).");
        }
        if (options.MaxCompletedTasksPerFramework < 0)
        {
            errors.Add("MaxCompletedTasksPerFramework must not be negative.");
        }
        if (options.MaxCompletedFrameworks < 0)
        {
            errors.Add("MaxCompletedFrameworks must not be negative.");
        }
        if (options.MaxRemovedFrameworks < 0)
        {
            errors.Add($"MaxRemovedFrameworks {options.MaxRemovedFrameworks} is negative: give 0 or more (default 10000).");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void CheckPositive(List<string> errors, string name, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            errors.Add($"{name} must be positive (got {value}).");
        }
    }
}
