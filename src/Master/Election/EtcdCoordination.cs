using Sched.V1;
using Scheduler.Etcd;
using Scheduler.Master.Registry;

namespace Scheduler.Master.Election;

/// <summary>Settings of the etcd backend of replicated masters.</summary>
public sealed class EtcdCoordinationOptions
{
    /// <summary>Keys live under this root: <c>&lt;root&gt;/leader</c>, <c>&lt;root&gt;/masters/</c>, <c>&lt;root&gt;/registry/</c>.</summary>
    public string Root { get; init; } = "/sched";

    /// <summary>Leader lease TTL (whole seconds, ≥ 2): a dead leader is replaced within about this time.</summary>
    public TimeSpan LeaseTtl { get; init; } = MasterOptions.DefaultLeaseTtl;

    public string? Username { get; init; }

    public string? Password { get; init; }

    /// <summary>etcd's <c>--max-txn-ops</c>: the most records one registry commit may change.</summary>
    public int MaxTxnOps { get; init; } = 128;
}

/// <summary>
/// One master's connection to etcd: a client shared by its <see cref="EtcdLeaderElection"/> and its
/// <see cref="EtcdRegistryStore"/>, the store fenced by that election's leadership. Create the
/// election and the store once each (in either order); dispose this after both.
/// </summary>
public sealed class EtcdCoordination : IDisposable
{
    private readonly EtcdCoordinationOptions _options;
    private EtcdLeaderElection? _election;

    public EtcdCoordination(IList<string> endpoints, EtcdCoordinationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        _options = options ?? new EtcdCoordinationOptions();
        Client = new EtcdClient(new EtcdClientOptions
        {
            Endpoints = endpoints,
            Username = _options.Username,
            Password = _options.Password,
        });
    }

    public EtcdClient Client { get; }

    /// <summary>The election of this master (created once).</summary>
    public EtcdLeaderElection CreateElection(MasterInfo self)
    {
        if (_election is not null)
        {
            throw new InvalidOperationException("The election of this master was already created.");
        }
        _election = new EtcdLeaderElection(Client, self, new EtcdLeaderElectionOptions
        {
            LeaderKey = _options.Root + "/leader",
            MastersPrefix = _options.Root + "/masters/",
            Ttl = _options.LeaseTtl,
        });
        return _election;
    }

    /// <summary>The registry, writable only while this master's election leads.</summary>
    public EtcdRegistryStore CreateStore() => new(Client, () => _election?.Fence, new EtcdRegistryStoreOptions
    {
        Prefix = _options.Root + "/registry/",
        MaxTxnOps = _options.MaxTxnOps,
    });

    public void Dispose() => Client.Dispose();
}
