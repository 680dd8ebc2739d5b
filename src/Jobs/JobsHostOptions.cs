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

    /// <summary>Where the jobs state file lives.</summary>
    public string WorkDir { get; init; } = "";

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
    }
}
