using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using Sched.V1;
using Scheduler.Agent.Telemetry;
using Scheduler.Hosting;
using Scheduler.LinkClient;

namespace Scheduler.Agent;

/// <summary>
/// The agent's end of <c>AgentLink.Connect</c> (CONTRACTS): a <see cref="LinkLoop"/> of
/// <see cref="LinkSession"/>s (leader hints followed, reconnects with jittered exponential backoff
/// cycling through the masters, heartbeats, a master that stops answering left) in which the agent
/// registers with its checkpointed id and tasks, sends status updates from the queue and usage,
/// and hands launches, kills, acks and reconciliation to <see cref="AgentCore"/>.
/// </summary>
public sealed class MasterLink(AgentCore core, AgentOptions options, Func<AgentInfo> agentInfo, ILogger logger, TimeProvider time, Random random, DaemonAnnouncements announcements) : ILinkParticipant
{
    private readonly Dictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);
    private readonly Channels.Tls.ClientTls? _tls = Channels.Tls.ClientTls.FromFiles(options.Tls);
    private bool _announced;

    /// <summary>Completes with the first successful registration's agent id.</summary>
    public TaskCompletionSource<string> Registered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Runs until cancelled (returns 0) or the master refuses the agent for good (non-zero).</summary>
    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        if (options.Masters.Count == 0)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
            return 0;
        }
        var loop = new LinkLoop(new MasterSelection(options.Masters, options.ReconnectMin, options.ReconnectMax, random), time);
        try
        {
            var refusal = await loop.RunAsync(
                ChannelFor,
                this,
                new LinkSessionOptions { Time = time, RegistrationTimeout = options.RegistrationTimeout },
                (address, leader) => AgentLog.NotLeader(logger, address, leader),
                (address, e) => AgentLog.LinkLost(logger, address, e.Message),
                cancellationToken);
            switch (refusal)
            {
                case null:
                    return 0;
                case { IsRejection: true }:
                    AgentLog.RegistrationRejected(logger, refusal.Address, refusal.Detail);
                    announcements.Complain($"agent registration rejected by {refusal.Address}: {refusal.Detail}");
                    return 4;
                default:
                    AgentLog.Refused(logger, refusal.Address, refusal.Detail);
                    announcements.Complain($"agent refused by master {refusal.Address}: {refusal.Detail}");
                    return 3;
            }
        }
        finally
        {
            foreach (var c in _channels.Values)
            {
                c.Dispose();
            }
        }
    }

    private GrpcChannel ChannelFor(string address)
    {
        if (!_channels.TryGetValue(address, out var channel))
        {
            channel = LinkChannels.ForAddress(address, options.Token, _tls);
            _channels[address] = channel;
        }
        return channel;
    }

    AgentMessage.Types.Register ILinkParticipant.BuildRegister() => core.BuildRegister(agentInfo());

    void ILinkParticipant.OnRegistered(MasterMessage.Types.Registered registered, LinkSession session)
    {
        core.SetAgentId(registered.AgentId);
        core.Volumes.Sync(registered.CheckpointedResources);
        if (!_announced)
        {
            _announced = true;
            announcements.Say($"agent registered as {core.AgentId}");
        }
        Registered.TrySetResult(core.AgentId);
        AgentLog.Registered(logger, session.Address, core.AgentId);
    }

    /// <summary>The agent was marked gone: kills every task (their supervisors finish the kills
    /// after the agent exits); the session then ends the link for good, as a refusal.</summary>
    Task ILinkParticipant.OnShutdownAsync(MasterMessage.Types.Shutdown shutdown) => core.KillAllAsync(TaskStatus.Types.Reason.AgentRemoved);

    void ILinkParticipant.OnHeartbeat(ulong sequence, LinkSession session)
    {
        if (options.UsageEveryHeartbeats > 0 && sequence % (ulong)options.UsageEveryHeartbeats == 0)
        {
            session.Post(new AgentMessage { Usage = core.Usage() });
        }
    }

    /// <summary>Sends the status updates due (every unacknowledged head at once on a new session,
    /// then each new head, and re-sends on the queue's backoff).</summary>
    Task? ILinkParticipant.RunAlongsideAsync(LinkSession session, CancellationToken cancellationToken) => SendUpdatesAsync(session, cancellationToken);

    private async Task SendUpdatesAsync(LinkSession session, CancellationToken cancellationToken)
    {
        using var wake = new SemaphoreSlim(0);
        void OnHead() => wake.Release();
        core.Updates.HeadReady += OnHead;
        core.Updates.ResendAllNow();
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var due = core.Updates.TakeDue();
                if (due.Count > 0)
                {
                    var batch = new AgentMessage.Types.StatusUpdates();
                    batch.Updates.AddRange(due);
                    session.Post(new AgentMessage { StatusUpdates = batch });
                }
                var next = core.Updates.NextDue();
                var wait = next is null ? Timeout.InfiniteTimeSpan : next.Value - time.GetUtcNow();
                if (wait != Timeout.InfiniteTimeSpan && wait < TimeSpan.Zero)
                {
                    wait = TimeSpan.Zero;
                }
                await wake.WaitAsync(wait, cancellationToken);
            }
        }
        finally
        {
            core.Updates.HeadReady -= OnHead;
        }
    }

    async ValueTask ILinkParticipant.HandleAsync(MasterMessage m, LinkSession session, CancellationToken cancellationToken)
    {
        switch (m.MessageCase)
        {
            case MasterMessage.MessageOneofCase.Launch:
                core.Launch(m.Launch.Framework, m.Launch.Tasks, m.Launch.Secrets);
                break;
            case MasterMessage.MessageOneofCase.Kill:
                await core.KillAsync(m.Kill.FrameworkId, m.Kill.TaskId, m.Kill.KillPolicy,
                    m.Kill.Reason == TaskStatus.Types.Reason.Unspecified ? TaskStatus.Types.Reason.KilledByFramework : m.Kill.Reason);
                break;
            case MasterMessage.MessageOneofCase.Acks:
                foreach (var ack in m.Acks.Acks)
                {
                    core.Acknowledge(ack.FrameworkId, ack.TaskId, ack.Uuid);
                }
                break;
            case MasterMessage.MessageOneofCase.ShutdownFramework:
                await core.ShutdownFrameworkAsync(m.ShutdownFramework.FrameworkId,
                    m.ShutdownFramework.Reason == TaskStatus.Types.Reason.Unspecified ? TaskStatus.Types.Reason.FrameworkRemoved : m.ShutdownFramework.Reason);
                break;
            case MasterMessage.MessageOneofCase.Reconcile:
                var answers = core.Reconcile(m.Reconcile.TaskIds);
                if (answers.Count > 0)
                {
                    var batch = new AgentMessage.Types.StatusUpdates();
                    batch.Updates.AddRange(answers);
                    session.Post(new AgentMessage { StatusUpdates = batch });
                }
                break;
            case MasterMessage.MessageOneofCase.ApplyOperations:
                core.Volumes.Apply(m.ApplyOperations);
                break;
            default:
                // ping (the session adopted its interval), registered: nothing to do.
                break;
        }
    }
}
