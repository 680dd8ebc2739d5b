using Sched.V1;
using Scheduler.Master.Election;
using Scheduler.Master.Registry;

namespace Scheduler.Master.Tests.Harness;

/// <summary>
/// A test double of leader election, driven by the test: leadership is granted and revoked on
/// demand, and the leader another master holds can be set. Stands in for the etcd election to
/// test the master's follower and deposed-leader behaviour in-process.
/// </summary>
public sealed class ElectionDouble(MasterInfo self) : ILeaderElection
{
    private readonly Lock _gate = new();
    private TaskCompletionSource _granted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private CancellationTokenSource? _lost;
    private ulong _term;
    private MasterInfo? _leader;

    public MasterInfo Self { get; } = self;

    public MasterInfo? CurrentLeader
    {
        get
        {
            lock (_gate)
            {
                return _leader;
            }
        }
    }

    public event Action<MasterInfo?>? LeaderChanged;

    /// <summary>Stands in for a replicated election (other masters may lead).</summary>
    public bool Replicated => true;

    /// <summary>No fence: the double is used with stores that do not need one.</summary>
    public RegistryFence? Fence => null;

    /// <summary>Never raised: campaigns wait for <see cref="Grant"/>.</summary>
    public event Action<Exception>? CampaignFailed
    {
        add { }
        remove { }
    }

    /// <summary>Another master leads (this one follows).</summary>
    public void SetOtherLeader(string address)
    {
        lock (_gate)
        {
            _leader = new MasterInfo { Id = "other", Address = address };
        }
        LeaderChanged?.Invoke(_leader);
    }

    /// <summary>Lets the pending (or next) campaign win.</summary>
    public void Grant()
    {
        lock (_gate)
        {
            _granted.TrySetResult();
        }
    }

    /// <summary>Ends the current leadership at once.</summary>
    public void Revoke()
    {
        CancellationTokenSource? lost;
        lock (_gate)
        {
            lost = _lost;
            _lost = null;
            _leader = null;
        }
        lost?.Cancel();
    }

    public async Task<Leadership> CampaignAsync(CancellationToken cancellationToken)
    {
        Task granted;
        lock (_gate)
        {
            granted = _granted.Task;
        }
        await granted.WaitAsync(cancellationToken);
        lock (_gate)
        {
            _granted = new(TaskCreationOptions.RunContinuationsAsynchronously);
            _lost = new CancellationTokenSource();
            _term++;
            _leader = Self.Clone();
            _leader.Term = _term;
            return new Leadership(_term, _leader, _lost.Token);
        }
    }

    public Task ResignAsync(CancellationToken cancellationToken)
    {
        Revoke();
        return Task.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        Revoke();
        return ValueTask.CompletedTask;
    }
}
