using Scheduler.Resilience;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Sched.V1;
using Scheduler.Channels;

namespace Scheduler.FrameworkSdk;

/// <summary>How a <see cref="SchedulerClient"/> finds the masters and behaves.</summary>
public sealed class SchedulerClientOptions
{
    /// <summary>
    /// The masters, as <c>host:port</c> (or <c>http://host:port</c>). The client subscribes to the
    /// first that answers and follows the leader hint (<c>sched-leader</c>) of non-leading masters.
    /// Required: at least one.
    /// </summary>
    public IList<string> Masters { get; init; } = [];

    /// <summary>
    /// Transport of the channels to the masters: TLS (<see cref="GrpcChannelSettings.Tls"/>: the
    /// cluster's CA and, for mutual TLS, a client certificate), message sizes, keepalive. Null:
    /// defaults, over TLS trusting the CA file named by the <c>SCHED_TLS_CA</c> environment
    /// variable when it is set, else plaintext. <see cref="Token"/> is presented unless these
    /// settings carry a bearer token of their own.
    /// </summary>
    public GrpcChannelSettings? Channel { get; init; }

    /// <summary>TLS trusting the CA file of <c>SCHED_TLS_CA</c>; null when it is not set.</summary>
    /// <exception cref="Scheduler.Channels.Tls.TlsFileException">When the file is missing or holds no certificate.</exception>
    public static Scheduler.Channels.Tls.ClientTls? DefaultTls() =>
        Environment.GetEnvironmentVariable("SCHED_TLS_CA") is { Length: > 0 } ca ? Scheduler.Channels.Tls.ClientTls.FromFiles(ca.Trim()) : null;

    /// <summary>
    /// The framework to subscribe. <c>Name</c> and at least one role are required. Leave <c>Id</c>
    /// empty for a new framework, or set it to fail over an existing one.
    /// </summary>
    public FrameworkInfo Framework { get; init; } = new();

    /// <summary>Roles to start suppressed (no offers until Revive).</summary>
    public IList<string> SuppressedRoles { get; init; } = [];

    /// <summary>
    /// Acknowledge status updates automatically once the consumer has processed them (the next
    /// event is read, or the <see cref="IScheduler.OnUpdateAsync"/> callback returned). Default on.
    /// When off, call <see cref="SchedulerClient.AcknowledgeAsync(Sched.V1.TaskStatus, CancellationToken)"/>.
    /// </summary>
    public bool AutoAcknowledge { get; init; } = true;

    /// <summary>Reconnect backoff (default 0.5 s doubling to 10 s, jittered).</summary>
    public Backoff Backoff { get; init; } = Backoff.Default;

    /// <summary>Deadline of each unary call (Accept, Decline, …). Default 10 s.</summary>
    public TimeSpan CallTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long to wait for the first event of a new subscription before giving up on that master
    /// and trying the next. Default 5 s: a frozen master still accepts connections but never
    /// answers, and the client should be on the leader within seconds.
    /// </summary>
    public TimeSpan SubscribeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Missed master heartbeats after which the connection counts as lost. Default 3.</summary>
    public int MissedHeartbeats { get; init; } = 3;

    /// <summary>Where the client logs connections, failovers and failed calls.</summary>
    public ILogger Logger { get; init; } = NullLogger.Instance;

    /// <summary>
    /// The bearer token the client presents (<c>authorization: Bearer TOKEN</c> on every call); the
    /// framework then belongs to the token's principal. Default: the <c>SCHED_TOKEN</c> environment
    /// variable; null or empty: no credentials (a master started with --insecure-allow-anonymous).
    /// </summary>
    public string? Token { get; init; } = Environment.GetEnvironmentVariable("SCHED_TOKEN");

    /// <summary>The clock for heartbeat detection and backoff (tests inject a fake one).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>The source of backoff jitter.</summary>
    public Random Random { get; init; } = Random.Shared;

    /// <summary>Checks the options; throws <see cref="ArgumentException"/> saying what to fix.</summary>
    public void Validate()
    {
        if (Masters.Count == 0 || Masters.Any(string.IsNullOrWhiteSpace))
        {
            throw new ArgumentException("SchedulerClientOptions.Masters needs at least one master address (host:port).");
        }
        if (Framework is null || string.IsNullOrWhiteSpace(Framework.Name))
        {
            throw new ArgumentException("SchedulerClientOptions.Framework.Name is required: name your framework.");
        }
        if (Framework.Roles.Count == 0)
        {
            throw new ArgumentException("SchedulerClientOptions.Framework.Roles needs at least one role (e.g. \"default\" or \"eng/batch\").");
        }
        if (MissedHeartbeats < 1)
        {
            throw new ArgumentException("SchedulerClientOptions.MissedHeartbeats must be at least 1.");
        }
        if (CallTimeout <= TimeSpan.Zero || SubscribeTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("SchedulerClientOptions.CallTimeout and SubscribeTimeout must be positive.");
        }
    }
}
