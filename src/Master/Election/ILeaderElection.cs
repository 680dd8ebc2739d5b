using Sched.V1;
using Scheduler.Master.Registry;

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

    /// <summary>
    /// Whether other masters may lead in turn (a replicated election). A master whose election is
    /// not replicated reports itself as "standalone" to operators.
    /// </summary>
    bool Replicated { get; }

    /// <summary>
    /// The fence of the leadership held now, which a replicated registry store attaches to every
    /// write so that a deposed leader's writes fail; null when not leading, or when the election
    /// needs no fence (a single master: nobody else can write).
    /// </summary>
    RegistryFence? Fence { get; }

    /// <summary>Raised (on the campaigning task) for each failed campaign attempt — the
    /// coordination service unreachable, without quorum, the lease lost — before the campaign
    /// retries. For logging; an election that cannot fail never raises it.</summary>
    event Action<Exception>? CampaignFailed;

    /// <summary>Gives up leadership (graceful shutdown) so another master takes over at once.</summary>
    Task ResignAsync(CancellationToken cancellationToken);
}

/// <summary>One term of leadership.</summary>
/// <param name="Term">Increases with each election; fences registry writes.</param>
/// <param name="Lost">Cancelled when this leadership ends.</param>
public sealed record Leadership(ulong Term, MasterInfo Leader, CancellationToken Lost);
