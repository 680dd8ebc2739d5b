using Grpc.Health.V1;
using Grpc.HealthCheck;
using Sched.V1;
using Scheduler.Master.Election;
using Scheduler.Master.Loop;
using Scheduler.Master.State;
using Grpc.Core;

namespace Scheduler.Master.Services;

/// <summary>
/// What the RPC handlers see of the master: the loop of the current leadership term, or none
/// (then every call but GetHealth/GetLeader answers UNAVAILABLE with the leader hint).
/// </summary>
public sealed class MasterRuntime
{
    private volatile Term? _term;

    public MasterRuntime(TimeProvider time)
    {
        Time = time;
        StartedAt = time.GetUtcNow();
    }

    public TimeProvider Time { get; }

    public DateTimeOffset StartedAt { get; }

    /// <summary>This master (set once it listens).</summary>
    public MasterInfo? Self { get; set; }

    /// <summary>Authentication and ACLs (set before the server starts); open by default.</summary>
    public Security.MasterSecurity Security { get; set; } = Master.Security.MasterSecurity.Open;

    /// <summary>The election, once started (for leader hints).</summary>
    public ILeaderElection? Election { get; set; }

    /// <summary>Whether the registry is embedded (single master) rather than etcd.</summary>
    public bool Standalone { get; set; }

    public MasterLoop? CurrentLoop => Live(_term)?.Loop;

    /// <summary>The leader's address as far as this master knows (null if unknown).</summary>
    public string? LeaderHint()
    {
        if (Live(_term) is { } term)
        {
            return term.Loop.Self.Address;
        }
        var leader = Election?.CurrentLeader;
        return leader is null || leader.Address == Self?.Address ? null : leader.Address;
    }

    /// <summary>The key under which <see cref="LeaderInterceptor"/> leaves a call's term in its
    /// <see cref="ServerCallContext.UserState"/>.</summary>
    internal static readonly object TermKey = new();

    /// <summary>The leadership term <see cref="LeaderInterceptor"/> found for this call.</summary>
    /// <exception cref="InvalidOperationException">When the call did not pass the interceptor
    /// (a service mapped without it).</exception>
    public static Term TermOf(ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.UserState.TryGetValue(TermKey, out var term) && term is Term t
            ? t
            : throw new InvalidOperationException($"{context.Method} reached its handler without the leader check; map the master's services with LeaderInterceptor.");
    }

    /// <summary>The current term, or UNAVAILABLE with the leader hint.</summary>
    public Term Require()
    {
        return Live(_term) ?? throw MasterErrors.NotLeader(LeaderHint());
    }

    /// <summary>
    /// Drains <paramref name="outbox"/> to <paramref name="stream"/> until the outbox closes or the
    /// call ends (<paramref name="callToken"/>). The end of <paramref name="term"/> ends the call
    /// with UNAVAILABLE and the leader hint.
    /// </summary>
    public async Task DrainAsync<T>(Term term, Outbox<T> outbox, IServerStreamWriter<T> stream, CancellationToken callToken)
    {
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(callToken, term.Lost);
        await DrainLinkedAsync(term, outbox, stream, ended.Token);
    }

    /// <summary>As <see cref="DrainAsync{T}"/>, for a caller whose <paramref name="ended"/> token
    /// already fires at the end of <paramref name="term"/> (no second linked source).</summary>
    public async Task DrainLinkedAsync<T>(Term term, Outbox<T> outbox, IServerStreamWriter<T> stream, CancellationToken ended)
    {
        try
        {
            await outbox.DrainToAsync(stream, ended);
        }
        catch (OperationCanceledException) when (term.Lost.IsCancellationRequested)
        {
            throw MasterErrors.NotLeader(LeaderHint());
        }
    }

    /// <summary>The term if it still holds: not ended, and the election's lease still valid now (a
    /// master resumed after a stall longer than its lease must not answer even once as leader).</summary>
    private Term? Live(Term? term) =>
        term is not null && !term.Lost.IsCancellationRequested && Election?.HoldsLeadership != false ? term : null;

    /// <summary><c>grpc.health.v1.Health</c>: SERVING (overall and per <c>sched.v1</c> service)
    /// while this master leads, NOT_SERVING otherwise, so that a load balancer finds the leader.</summary>
    public HealthServiceImpl Health { get; } = NewHealth();

    internal void Begin(MasterLoop loop, CancellationToken lost)
    {
        _term = new Term(loop, lost);
        SetServing(Health, HealthCheckResponse.Types.ServingStatus.Serving);
    }

    internal void End()
    {
        _term = null;
        SetServing(Health, HealthCheckResponse.Types.ServingStatus.NotServing);
    }

    private static HealthServiceImpl NewHealth()
    {
        var health = new HealthServiceImpl();
        SetServing(health, HealthCheckResponse.Types.ServingStatus.NotServing);
        return health;
    }

    private static void SetServing(HealthServiceImpl health, HealthCheckResponse.Types.ServingStatus status)
    {
        health.SetStatus("", status);
        foreach (var service in HealthServices)
        {
            health.SetStatus(service, status);
        }
    }

    /// <summary>The services whose health follows leadership.</summary>
    public static readonly string[] HealthServices = [
        global::Sched.V1.Scheduler.Descriptor.FullName,
        AgentLink.Descriptor.FullName,
        Operator.Descriptor.FullName,
    ];

    /// <summary>One leadership term: its loop and the token cancelled when it ends.</summary>
    public sealed record Term(MasterLoop Loop, CancellationToken Lost);
}
