using Sched.V1;
using Scheduler.Allocation;
using Scheduler.Master.Registry;
using Scheduler.Master.State;
using Scheduler.Master.Telemetry;

namespace Scheduler.Master.Loop;

/// <summary>Start of a leadership term: rebuild from the registry, wait for agents.</summary>
public sealed partial class MasterLoop
{
    /// <summary>End of the grace a master failover gives every recovered framework to re-subscribe
    /// (see <see cref="RecoveredFailoverDeadline"/>).</summary>
    private DateTimeOffset _frameworkGraceUntil;

    private void Load(RegistrySnapshot snapshot)
    {
        var now = Now;
        _frameworkGraceUntil = now + _options.AgentReregisterTimeout;
        _secrets.Load(snapshot);
        foreach (var record in snapshot.Agents.Values)
        {
            if (record.State == AgentRecord.Types.State.Gone)
            {
                _agents.MarkGone(record.Info.Id);
                continue;
            }
            var agent = new AgentEntry(record.Info)
            {
                Status = AgentStatus.AgentUnreachable,
                Draining = record.Draining,
                UnreachableSince = record.UnreachableSince > 0 ? DateTimeOffset.FromUnixTimeMilliseconds((long)(record.UnreachableSince * 1000)) : now,
                Principal = record.Principal,
            };
            Configure(agent, record.CheckpointedResources);
            _agents.Add(agent);
            if (record.State == AgentRecord.Types.State.Admitted)
            {
                _agents.Expect(agent.Id);
            }
        }
        foreach (var record in snapshot.Frameworks.Values.Where(r => r.RemovedTime > 0).OrderBy(r => r.RemovedTime))
        {
            ForgetTombstones(_frameworks.AddTombstone(record.Info.Id));
        }
        foreach (var record in snapshot.Frameworks.Values)
        {
            if (record.RemovedTime > 0)
            {
                continue;
            }
            var fw = new FrameworkEntry(record.Info) { RegisteredTime = record.RegisteredTime };
            fw.DisconnectedTime = record.DisconnectedTime > 0 ? record.DisconnectedTime : NowSeconds;
            fw.FailoverDeadline = RecoveredFailoverDeadline(fw.DisconnectedTime, fw.Info.FailoverTimeoutSeconds);
            _frameworks.Add(fw);
            _allocator.AddFramework(Spec(fw), []);
            _allocator.DeactivateFramework(fw.Id);
            if (record.DisconnectedTime <= 0)
            {
                // Record when the deadline clock started, so it survives another failover.
                Persist(RegistryWrite.Put(RegistryRecords.FrameworkKey(fw.Id), ToRecord(fw)));
            }
        }
        _quotaBook.Load(snapshot);
        foreach (var quota in _quotaBook.Quotas)
        {
            _allocator.UpdateQuota(quota);
        }
        if (_quotaBook.Weights is { Count: > 0 } weights)
        {
            _allocator.UpdateWeights(weights);
        }
        Recovering = _agents.ExpectedCount > 0;
        _recoveryDeadline = now + _options.AgentReregisterTimeout;
        MasterLog.BecameLeader(_logger, Self.Term, _agents.Count, _frameworks.Count);
        PublishGauges();
    }

    /// <summary>
    /// When a framework recovered in this term (from the registry, or from an agent's report) is
    /// removed unless it re-subscribes: its own failover timeout counted from its own disconnect
    /// (<paramref name="disconnectedSeconds"/>, epoch seconds; the failover itself for a framework
    /// that was connected to the previous leader), but never before the re-registration grace
    /// after this master took over. Without the grace a framework on the default failover timeout
    /// of 0 would be torn down, tasks and all, at the first tick after every failover, before it
    /// could find the new leader.
    /// </summary>
    private DateTimeOffset RecoveredFailoverDeadline(double disconnectedSeconds, double failoverTimeoutSeconds)
    {
        var own = DateTimeOffset.FromUnixTimeMilliseconds((long)((disconnectedSeconds + failoverTimeoutSeconds) * 1000));
        return own > _frameworkGraceUntil ? own : _frameworkGraceUntil;
    }

    private void FinishRecovery()
    {
        var missing = _agents.EndRecovery();
        foreach (var agent in missing)
        {
            agent.Status = AgentStatus.AgentUnreachable;
            agent.UnreachableSince = Now;
            Persist(RegistryWrite.Put(RegistryRecords.AgentKey(agent.Id), ToRecord(agent)));
            MasterLog.AgentUnreachable(_logger, agent.Id, "did not re-register after the master failover");
        }
        // Agents that re-registered stopped being expected as they came back: count from the load.
        var back = _agents.RecoveredCount - missing.Count;
        Recovering = false;
        MasterLog.RecoveryFinished(_logger, back, missing.Count);
    }

    private static FrameworkSpec Spec(FrameworkEntry fw) => new(
        fw.Id,
        [.. fw.Info.Roles],
        [.. fw.Info.Capabilities],
        [.. fw.Info.OfferConstraints],
        [.. fw.Info.MinAllocatableResources],
        [.. fw.SuppressedRoles]);

    /// <summary>The agent for the allocator. Its resources are <see cref="AgentResources.Total"/>
    /// itself, not a copy: that list is replaced, never mutated.</summary>
    private static AgentSpec Spec(AgentEntry agent) => new(agent.Id, agent.Info.Hostname, agent.Resources.Total, agent.Info.Attributes, agent.Draining);

    private static FrameworkRecord ToRecord(FrameworkEntry fw) => new()
    {
        Info = fw.Info,
        RegisteredTime = fw.RegisteredTime,
        DisconnectedTime = fw.Connected ? 0 : fw.DisconnectedTime,
    };

    private static AgentRecord ToRecord(AgentEntry agent) => new()
    {
        CheckpointedResources = { agent.Resources.Checkpointed },
        Info = agent.Info,
        State = agent.Status == AgentStatus.AgentUnreachable ? AgentRecord.Types.State.Unreachable
            : agent.Status == AgentStatus.AgentGone ? AgentRecord.Types.State.Gone
            : AgentRecord.Types.State.Admitted,
        UnreachableSince = agent.UnreachableSince is { } t && agent.Status == AgentStatus.AgentUnreachable ? t.ToUnixTimeMilliseconds() / 1000.0 : 0,
        Draining = agent.Draining,
        Principal = agent.Principal,
    };
}
