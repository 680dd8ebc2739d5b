using Sched.V1;
using Scheduler.Master.Election;
using Scheduler.Master.Loop;
using Scheduler.Master.State;
using Scheduler.Rpc;

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

    /// <summary>The current term, or UNAVAILABLE with the leader hint.</summary>
    public Term Require()
    {
        return Live(_term) ?? throw MasterErrors.NotLeader(LeaderHint());
    }

    /// <summary>
    /// Drains <paramref name="outbox"/> to the stream of <paramref name="context"/>'s call until the
    /// outbox closes or the call ends. The end of <paramref name="term"/> ends the call (through its
    /// own token: no linked source per stream) with UNAVAILABLE and the leader hint.
    /// </summary>
    public async Task DrainAsync<T>(Term term, Outbox<T> outbox, IServerStreamWriter<T> stream, ServerCallContext context)
    {
        using var lost = term.Lost.UnsafeRegister(static c => ((ServerCallContext)c!).Cancel(), context);
        try
        {
            await outbox.DrainToAsync(stream, context.CancellationToken);
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

    internal void Begin(MasterLoop loop, CancellationToken lost) => _term = new Term(loop, lost);

    internal void End() => _term = null;

    /// <summary>One leadership term: its loop and the token cancelled when it ends.</summary>
    public sealed record Term(MasterLoop Loop, CancellationToken Lost);
}
