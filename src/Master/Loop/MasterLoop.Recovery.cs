using Sched.V1;
using Scheduler.Allocation;
using Scheduler.Master.Registry;
using Scheduler.Master.State;
using Scheduler.Master.Telemetry;

namespace Scheduler.Master.Loop;

/// <summary>Start of a leadership term: rebuild from the registry, wait for agents.</summary>
public sealed partial class MasterLoop
{
    private void Load(RegistrySnapshot snapshot)
    {
        var now = Now;
        foreach (var record in snapshot.Agents.Values)
        {
            if (record.State == AgentRecord.Types.State.Gone)
            {
                _goneAgents.Add(record.Info.Id);
                continue;
            }
            var agent = new AgentEntry(record.Info)
            {
                Status = AgentStatus.AgentUnreachable,
                Draining = record.Draining,
                UnreachableSince = record.UnreachableSince > 0 ? DateTimeOffset.FromUnixTimeMilliseconds((long)(record.UnreachableSince * 1000)) : now,
                Checkpointed = [.. record.CheckpointedResources],
            };
            RecomputeTotal(agent);
            _agents[agent.Id] = agent;
            if (record.State == AgentRecord.Types.State.Admitted)
            {
                _expectedAgents.Add(agent.Id);
            }
        }
        foreach (var record in snapshot.Frameworks.Values)
        {
            if (record.RemovedTime > 0)
            {
                _removedFrameworks.Add(record.Info.Id);
                continue;
            }
            var fw = new FrameworkEntry(record.Info) { RegisteredTime = record.RegisteredTime };
            fw.DisconnectedTime = record.DisconnectedTime > 0 ? record.DisconnectedTime : NowSeconds;
            fw.FailoverDeadline = DateTimeOffset.FromUnixTimeMilliseconds((long)((fw.DisconnectedTime + fw.Info.FailoverTimeoutSeconds) * 1000));
            _frameworks[fw.Id] = fw;
            _allocator.AddFramework(Spec(fw), []);
            _allocator.DeactivateFramework(fw.Id);
            if (record.DisconnectedTime <= 0)
            {
                // Record when the deadline clock started, so it survives another failover.
                Persist(RegistryWrite.Put(RegistryRecords.FrameworkKey(fw.Id), ToRecord(fw)));
            }
        }
        foreach (var quota in snapshot.Quotas.Values)
        {
            _quotas[quota.Role] = quota;
            _allocator.UpdateQuota(quota);
        }
        foreach (var weight in snapshot.Weights.Values)
        {
            _weights[weight.Role] = weight.Weight;
        }
        if (_weights.Count > 0)
        {
            _allocator.UpdateWeights([.. _weights.Select(w => new WeightInfo { Role = w.Key, Weight = w.Value })]);
        }
        Recovering = _expectedAgents.Count > 0;
        _recoveryDeadline = now + _options.AgentReregisterTimeout;
        MasterLog.BecameLeader(_logger, Self.Term, _agents.Count, _frameworks.Count);
        PublishGauges();
    }

    private void FinishRecovery()
    {
        var missing = 0;
        foreach (var id in _expectedAgents)
        {
            if (_agents.TryGetValue(id, out var agent) && agent.Link is null)
            {
                missing++;
                agent.Status = AgentStatus.AgentUnreachable;
                agent.UnreachableSince = Now;
                Persist(RegistryWrite.Put(RegistryRecords.AgentKey(id), ToRecord(agent)));
                MasterLog.AgentUnreachable(_logger, id, "did not re-register after the master failover");
            }
        }
        var back = _expectedAgents.Count - missing;
        _expectedAgents.Clear();
        Recovering = false;
        MasterLog.RecoveryFinished(_logger, back, missing);
    }

    private static FrameworkSpec Spec(FrameworkEntry fw) => new(
        fw.Id,
        [.. fw.Info.Roles],
        [.. fw.Info.Capabilities],
        [.. fw.Info.OfferConstraints],
        [.. fw.Info.MinAllocatableResources],
        [.. fw.SuppressedRoles]);

    /// <summary>The agent for the allocator. Its resources are <see cref="AgentEntry.TotalResources"/>
    /// itself, not a copy: that list is replaced, never mutated.</summary>
    private static AgentSpec Spec(AgentEntry agent) => new(agent.Id, agent.Info.Hostname, agent.TotalResources, agent.Info.Attributes, agent.Draining);

    private static FrameworkRecord ToRecord(FrameworkEntry fw) => new()
    {
        Info = fw.Info,
        RegisteredTime = fw.RegisteredTime,
        DisconnectedTime = fw.Connected ? 0 : fw.DisconnectedTime,
    };

    private static AgentRecord ToRecord(AgentEntry agent) => new()
    {
        CheckpointedResources = { agent.Checkpointed },
        Info = agent.Info,
        State = agent.Status == AgentStatus.AgentUnreachable ? AgentRecord.Types.State.Unreachable
            : agent.Status == AgentStatus.AgentGone ? AgentRecord.Types.State.Gone
            : AgentRecord.Types.State.Admitted,
        UnreachableSince = agent.UnreachableSince is { } t && agent.Status == AgentStatus.AgentUnreachable ? t.ToUnixTimeMilliseconds() / 1000.0 : 0,
        Draining = agent.Draining,
    };
}
