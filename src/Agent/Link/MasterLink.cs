using Grpc.Net.Client;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Sched.V1;
using Scheduler.Protocol;
using Grpc.Core;
using Scheduler.Channels;
using Scheduler.LinkClient;
using Scheduler.Agent.Telemetry;
using Scheduler.Hosting;

namespace Scheduler.Agent;

/// <summary>
/// The agent's end of <c>AgentLink.Connect</c> (CONTRACTS): registers (with its checkpointed id
/// and tasks), follows <c>sched-leader</c> redirects, heartbeats, sends status updates from the
/// queue and usage, and dispatches launches, kills, acks and reconciliation to
/// <see cref="AgentCore"/>. Reconnects with jittered exponential backoff cycling through the masters.
/// </summary>
public sealed class MasterLink(AgentCore core, AgentOptions options, Func<AgentInfo> agentInfo, ILogger logger, TimeProvider time, Random random, DaemonAnnouncements announcements)
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
                SessionAsync,
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

    /// <summary>One connection: returns (or throws the reason) when it breaks.</summary>
    private async Task SessionAsync(string address, Action registered, CancellationToken cancellationToken)
    {
        if (!_channels.TryGetValue(address, out var channel))
        {
            channel = LinkChannels.ForAddress(address, options.Token, _tls);
            _channels[address] = channel;
        }
        using var session = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var call = channel.AsyncDuplexStreamingCall(AgentLinkMethods.Connect, new CallOptions(cancellationToken: session.Token));
        var first = await LinkLoop.RegisterAsync(call, new AgentMessage { Register = core.BuildRegister(agentInfo()) }, address, options.RegistrationTimeout, time, session.Token);
        if (first.MessageCase == MasterMessage.MessageOneofCase.Shutdown)
        {
            await ShutDownAsync(first.Shutdown);
        }
        core.SetAgentId(first.Registered.AgentId);
        core.Volumes.Sync(first.Registered.CheckpointedResources);
        if (!_announced)
        {
            _announced = true;
            announcements.Say($"agent registered as {core.AgentId}");
        }
        Registered.TrySetResult(core.AgentId);
        registered();
        AgentLog.Registered(logger, address, core.AgentId);
        var interval = new HeartbeatInterval(TimeSpan.FromSeconds(first.Registered.HeartbeatIntervalSeconds > 0 ? first.Registered.HeartbeatIntervalSeconds : 1));

        var outbound = Channel.CreateUnbounded<AgentMessage>(new UnboundedChannelOptions { SingleReader = true });
        long lastPing = time.GetTimestamp();
        var wake = new SemaphoreSlim(0);
        void OnHead() => wake.Release();
        core.Updates.HeadReady += OnHead;
        core.Updates.ResendAllNow();
        try
        {
            var writer = WriteLoopAsync(call.RequestStream, outbound.Reader, session.Token);
            var heartbeats = HeartbeatLoopAsync(outbound.Writer, interval, () => lastPing, session);
            var updates = UpdatePumpAsync(outbound.Writer, wake, session.Token);
            var reader = ReadLoopAsync(call.ResponseStream, outbound.Writer, () => lastPing = time.GetTimestamp(), interval, session.Token);
            var done = await Task.WhenAny(writer, heartbeats, updates, reader);
            await session.CancelAsync();
            // The next registration lists the agent's tasks, and the master takes a task it sent
            // on this stream but does not find in that list for dropped. So the reader must be
            // done before this session ends: on a loaded host it may still be acting on a message
            // it received before the cancel (a launch among them).
            await Task.WhenAll(writer, heartbeats, updates, reader).ContinueWith(_ => { }, TaskScheduler.Default);
            await done; // surfaces the reason (RpcException etc.)
        }
        finally
        {
            core.Updates.HeadReady -= OnHead;
        }
    }

    /// <summary>The agent was marked gone: kills every task (their supervisors finish the kills
    /// after the agent exits) and ends the link for good, as a refusal.</summary>
    private async Task ShutDownAsync(MasterMessage.Types.Shutdown shutdown)
    {
        await core.KillAllAsync(TaskStatus.Types.Reason.AgentRemoved);
        throw new RpcException(new Status(StatusCode.FailedPrecondition, shutdown.Message));
    }

    private static async Task WriteLoopAsync(IClientStreamWriter<AgentMessage> stream, ChannelReader<AgentMessage> reader, CancellationToken ct)
    {
        await foreach (var message in reader.ReadAllAsync(ct))
        {
            await stream.WriteAsync(message, ct);
        }
    }

    private async Task HeartbeatLoopAsync(ChannelWriter<AgentMessage> writer, HeartbeatInterval interval, Func<long> lastPing, CancellationTokenSource session)
    {
        var period = interval.Value;
        using var timer = new PeriodicTimer(period, time);
        ulong sequence = 0;
        while (await timer.WaitForNextTickAsync(session.Token))
        {
            // A new interval told in a ping applies from this tick; this tick still came after the
            // old one, so silence is judged against the longer of the two.
            var announced = interval.Value;
            var allowed = HeartbeatInterval.AllowedSilence(period, announced);
            if (announced != period)
            {
                timer.Period = period = announced;
            }
            if (time.GetElapsedTime(lastPing()) > allowed)
            {
                throw new TimeoutException("3 heartbeats without a ping from the master");
            }
            await writer.WriteAsync(new AgentMessage { Heartbeat = new AgentMessage.Types.Heartbeat { Sequence = ++sequence } }, session.Token);
            if (options.UsageEveryHeartbeats > 0 && sequence % (ulong)options.UsageEveryHeartbeats == 0)
            {
                await writer.WriteAsync(new AgentMessage { Usage = core.Usage() }, session.Token);
            }
        }
    }

    private async Task UpdatePumpAsync(ChannelWriter<AgentMessage> writer, SemaphoreSlim wake, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            var due = core.Updates.TakeDue();
            if (due.Count > 0)
            {
                var batch = new AgentMessage.Types.StatusUpdates();
                batch.Updates.AddRange(due);
                await writer.WriteAsync(new AgentMessage { StatusUpdates = batch }, ct);
            }
            var next = core.Updates.NextDue();
            var wait = next is null ? Timeout.InfiniteTimeSpan : next.Value - time.GetUtcNow();
            if (wait != Timeout.InfiniteTimeSpan && wait < TimeSpan.Zero)
            {
                wait = TimeSpan.Zero;
            }
            await wake.WaitAsync(wait, ct);
        }
    }

    private async Task ReadLoopAsync(IAsyncStreamReader<MasterMessage> stream, ChannelWriter<AgentMessage> writer, Action onMessage, HeartbeatInterval interval, CancellationToken ct)
    {
        while (await stream.MoveNext(ct))
        {
            onMessage();
            var m = stream.Current;
            switch (m.MessageCase)
            {
                case MasterMessage.MessageOneofCase.Ping:
                    if (m.Ping.HeartbeatIntervalSeconds > 0)
                    {
                        interval.Value = TimeSpan.FromSeconds(m.Ping.HeartbeatIntervalSeconds);
                    }
                    break;
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
                        await writer.WriteAsync(new AgentMessage { StatusUpdates = batch }, ct);
                    }
                    break;
                case MasterMessage.MessageOneofCase.ApplyOperations:
                    core.Volumes.Apply(m.ApplyOperations);
                    break;
                case MasterMessage.MessageOneofCase.Shutdown:
                    await ShutDownAsync(m.Shutdown);
                    break;
                case MasterMessage.MessageOneofCase.Registered:
                default:
                    break;
            }
        }
        throw new IOException("the master closed the stream");
    }
}
