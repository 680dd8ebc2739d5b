using Sched.V1;

namespace Scheduler.Master.Election;

/// <summary>
/// Decides which master leads. <c>StandaloneElection</c>: the only master leads at once (term 0).
/// <c>EtcdLeaderElection</c>: an etcd lease and a transaction on the leader key.
/// </summary>
public interface ILeaderElection : IAsyncDisposable
{
    /// <summary>
    /// Campaigns until this master leads; returns the leadership. Its <see cref="Leadership.Lost"/>
    /// token is cancelled the moment leadership is lost (lease expired, revoked, quorum lost):
    /// the master must stop serving and writing at once.
    /// </summary>
    Task<Leadership> CampaignAsync(CancellationToken cancellationToken);

    /// <summary>The leader as last observed (null when unknown).</summary>
    MasterInfo? CurrentLeader { get; }

    /// <summary>Raised when the observed leader changes (null when none).</summary>
    event Action<MasterInfo?>? LeaderChanged;

    /// <summary>
    /// Whether this master holds a leadership that is still valid right now, checked synchronously
    /// (for an etcd lease: its last confirmed renewal still covers the present). A master resumed
    /// after a long stall (SIGSTOP, a pause of the VM) sees false at once, before its timers run.
    /// </summary>
    bool HoldsLeadership => true;

    /// <summary>Gives up leadership (graceful shutdown) so another master takes over at once.</summary>
    Task ResignAsync(CancellationToken cancellationToken);
}

/// <summary>One term of leadership.</summary>
/// <param name="Term">Increases with each election; fences registry writes.</param>
/// <param name="Lost">Cancelled when this leadership ends.</param>
public sealed record Leadership(ulong Term, MasterInfo Leader, CancellationToken Lost);
