using System.Net;

namespace Scheduler.Jobs;

/// <summary>How the jobs framework runs.</summary>
public sealed class JobsHostOptions
{
    /// <summary>The masters (host:port), at least one.</summary>
    public IList<string> Masters { get; init; } = [];

    /// <summary>Where the Jobs API listens (port 0: any free port).</summary>
    public IPEndPoint Listen { get; init; } = new(IPAddress.Loopback, 0);

    /// <summary>The address advertised to clients (default: the bound address).</summary>
    public string? Advertise { get; init; }

    /// <summary>TLS: with a CA, the framework reaches the masters over TLS (presenting the
    /// certificate when given); with all three files the Jobs API is served over TLS too. Null:
    /// plaintext.</summary>
    public Scheduler.Channels.Tls.TlsFiles? Tls { get; init; }

    /// <summary>
    /// The jobs' own directory: the embedded state store (<c>registry/registry.bin</c>) when
    /// <see cref="EtcdEndpoints"/> is empty, and where a state file of an earlier version is
    /// looked for (imported once into an empty store).
    /// </summary>
    public string WorkDir { get; init; } = "";

    /// <summary>
    /// The etcd the masters run on (client URLs). When set, the state is kept there under
    /// <see cref="EtcdRoot"/> and several instances may run, one active, elected there; when empty,
    /// the state is in the embedded file store under <see cref="WorkDir"/> and one instance runs.
    /// </summary>
    public IList<string> EtcdEndpoints { get; init; } = [];

    /// <summary>The etcd keys of the jobs framework: <c>ROOT/leader</c>, <c>ROOT/masters/ADDR</c> (instances), <c>ROOT/registry/</c> (state). Default <c>/sched/jobs</c>, beside the masters' <c>/sched</c> keys.</summary>
    public string EtcdRoot { get; init; } = "/sched/jobs";

    /// <summary>etcd authentication (both or neither).</summary>
    public string? EtcdUsername { get; init; }

    /// <summary>Password of <see cref="EtcdUsername"/>.</summary>
    public string? EtcdPassword { get; init; }

    /// <summary>
    /// The bearer token presented to the masters (<c>authorization: Bearer TOKEN</c>): the jobs
    /// framework and its reads of roles and quotas belong to the token's principal. Default: the
    /// <c>SCHED_TOKEN</c> environment variable; null or empty: none (a master that allows anonymous callers).
    /// </summary>
    public string? Token { get; init; } = Environment.GetEnvironmentVariable("SCHED_TOKEN");

    /// <summary>Lease of the active instance on etcd (whole seconds, at least 2): a dead active instance is replaced within about this time.</summary>
    public TimeSpan LeaseTtl { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>The framework's name in the master (default "jobs").</summary>
    public string FrameworkName { get; init; } = "jobs";

    /// <summary>How long the master keeps the framework's tasks while it is away (default one week).</summary>
    public TimeSpan FailoverTimeout { get; init; } = TimeSpan.FromDays(7);

    /// <summary>The engine's tick (backoffs, rollouts, cron), default 200 ms.</summary>
    public TimeSpan Tick { get; init; } = TimeSpan.FromMilliseconds(200);

    public void Validate()
    {
        if (Masters.Count == 0)
        {
            throw new ArgumentException("the jobs framework needs at least one master address (--master host:port)");
        }
        if (string.IsNullOrWhiteSpace(WorkDir))
        {
            throw new ArgumentException("the jobs framework needs a work dir for its state (--work-dir DIR)");
        }
        if (EtcdEndpoints.Count > 0 && (LeaseTtl < TimeSpan.FromSeconds(2) || LeaseTtl.TotalSeconds % 1 != 0))
        {
            throw new ArgumentException($"the jobs lease TTL must be a whole number of seconds, at least 2 (etcd's minimum lease), not {LeaseTtl.TotalSeconds} s");
        }
        if (string.IsNullOrEmpty(EtcdRoot) || !EtcdRoot.StartsWith('/') || EtcdRoot.EndsWith('/'))
        {
            throw new ArgumentException($"the jobs etcd root '{EtcdRoot}' must start with '/' and not end with it (e.g. /sched/jobs)");
        }
    }
}
