using Sched.V1;
using Scheduler.Master.Registry;

namespace Scheduler.Master.Election;

/// <summary>
/// The election of a single master (no etcd): it leads as soon as it campaigns, in term 0, and
/// keeps leading until it resigns or is disposed.
/// </summary>
public sealed class StandaloneElection : ILeaderElection
{
    private readonly MasterInfo _self;
    private readonly CancellationTokenSource _lost = new();
    private readonly Lock _gate = new();
    private MasterInfo? _current;
    private bool _ended;

    /// <param name="self">This master; its <c>term</c> is set to 0 in the leadership.</param>
    public StandaloneElection(MasterInfo self)
    {
        ArgumentNullException.ThrowIfNull(self);
        _self = self.Clone();
        _self.Term = 0;
    }

    /// <inheritdoc />
    public MasterInfo? CurrentLeader
    {
        get
        {
            lock (_gate)
            {
                return _current;
            }
        }
    }

    /// <inheritdoc />
    public event Action<MasterInfo?>? LeaderChanged;

    /// <inheritdoc />
    public bool Replicated => false;

    /// <inheritdoc />
    /// <remarks>None: the only master needs no fence.</remarks>
    public RegistryFence? Fence => null;

    /// <inheritdoc />
    /// <remarks>Never raised: campaigning cannot fail.</remarks>
    public event Action<Exception>? CampaignFailed
    {
        add { }
        remove { }
    }

    /// <inheritdoc />
    public bool HoldsLeadership
    {
        get
        {
            lock (_gate)
            {
                return !_ended && _current is not null;
            }
        }
    }

    /// <inheritdoc />
    public Task<Leadership> CampaignAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            if (_ended)
            {
                throw new InvalidOperationException("This election has ended (resigned or disposed); create a new one to lead again.");
            }
            _current = _self;
        }
        LeaderChanged?.Invoke(_self);
        return Task.FromResult(new Leadership(0, _self, _lost.Token));
    }

    /// <inheritdoc />
    public Task ResignAsync(CancellationToken cancellationToken)
    {
        End();
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        End();
        _lost.Dispose();
        return ValueTask.CompletedTask;
    }

    private void End()
    {
        bool hadLeader;
        lock (_gate)
        {
            if (_ended)
            {
                return;
            }
            _ended = true;
            hadLeader = _current is not null;
            _current = null;
        }
        _lost.Cancel();
        if (hadLeader)
        {
            LeaderChanged?.Invoke(null);
        }
    }
}
