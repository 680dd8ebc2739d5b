using System.Collections.Concurrent;
using System.Net;
using Grpc.Core;
using Grpc.Net.Client;
using Sched.V1;
using Scheduler.Channels;
using Scheduler.Hosting;
using Scheduler.LinkClient;
using Scheduler.Protocol;
using Scheduler.Protocol.Masters;
using Xunit;

namespace Scheduler.Agent.Tests;

/// <summary>
/// <see cref="LinkSession"/>, the registered link the agent, the simulated agents and the test
/// doubles share, against a real gRPC server whose <c>AgentLink.Connect</c> answers as scripted.
/// </summary>
public sealed class LinkSessionTests : IAsyncLifetime
{
    private readonly ConcurrentQueue<Func<IAsyncStreamReader<AgentMessage>, IServerStreamWriter<MasterMessage>, ServerCallContext, Task>> _script = new();
    private GrpcServer _server = null!;
    private GrpcChannel _channel = null!;

    private string Address => "127.0.0.1:" + _server.BoundEndpoints[0].Port;

    public async Task InitializeAsync()
    {
        var options = new GrpcServerOptions();
        options.Endpoints.Add(new GrpcEndpoint(new IPEndPoint(IPAddress.Loopback, 0)));
        _server = await GrpcServer.StartAsync(options, new GrpcServices().Add(new ScriptedLink(this)));
        _channel = GrpcChannels.ForAddress(Address);
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task A_silent_master_is_left_after_three_pings_but_the_session_ends_only_after_its_reader()
    {
        var given = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var dropped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _script.Enqueue(async (requests, responses, context) =>
        {
            await requests.MoveNext(context.CancellationToken);
            await responses.WriteAsync(new MasterMessage { Registered = new MasterMessage.Types.Registered { AgentId = "a1", HeartbeatIntervalSeconds = 0.2 } });
            await responses.WriteAsync(new MasterMessage { Launch = new MasterMessage.Types.LaunchTasks() });
            given.TrySetResult();
            // Silent from now on: heartbeats are read and never answered.
            try
            {
                while (await requests.MoveNext(context.CancellationToken))
                {
                }
            }
            catch (Exception)
            {
            }
            dropped.TrySetResult();
        });
        var participant = new Participant { HoldLaunch = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };

        var session = await LinkSession.OpenAsync(_channel, Address, participant, new LinkSessionOptions(), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("a1", session.Registered.AgentId);
        await given.Task.WaitAsync(TimeSpan.FromSeconds(10));
        // The deadline (3 × 0.2 s + 0.2 s) passes: the session drops the stream …
        await dropped.Task.WaitAsync(TimeSpan.FromSeconds(10));
        // … but has not ended while its reader still handles the launch.
        Assert.False(session.Completion.IsCompleted);
        Assert.Empty(participant.Events);
        participant.HoldLaunch.SetResult();

        var e = await Assert.ThrowsAsync<TimeoutException>(() => session.Completion.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("3 heartbeats without a ping", e.Message, StringComparison.Ordinal);
        Assert.Equal(["launch handled", "ended: TimeoutException"], participant.Events);
        Assert.True(participant.Heartbeats >= 1, "no heartbeat before the deadline");
    }

    [Fact]
    public async Task Posted_messages_and_the_participants_own_go_out_in_order_and_the_masters_status_ends_the_session()
    {
        var written = new TaskCompletionSource<List<string>>(TaskCreationOptions.RunContinuationsAsynchronously);
        _script.Enqueue(async (requests, responses, context) =>
        {
            await requests.MoveNext(context.CancellationToken);
            await responses.WriteAsync(new MasterMessage { Registered = new MasterMessage.Types.Registered { AgentId = "a1", HeartbeatIntervalSeconds = 30 } });
            var seen = new List<string>();
            while (seen.Count < 3 && await requests.MoveNext(context.CancellationToken))
            {
                var m = requests.Current;
                seen.Add(m.MessageCase == AgentMessage.MessageOneofCase.StatusUpdates ? "updates " + m.StatusUpdates.Updates[0].FrameworkId : m.MessageCase.ToString());
            }
            written.TrySetResult(seen);
            // A master that lost its leadership ends the stream naming the new leader.
            throw new RpcException(new Status(StatusCode.Unavailable, "not the leader"), new Metadata { { MetadataKeys.Leader, "10.0.0.9:5050" } });
        });
        var participant = new Participant();

        var session = await LinkSession.OpenAsync(_channel, Address, participant, new LinkSessionOptions(), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        // One posted in OnRegistered, one sent here, then the participant's own when it wakes the writer.
        await session.SendAsync(new AgentMessage { Usage = new AgentMessage.Types.Usage() }).WaitAsync(TimeSpan.FromSeconds(10));
        participant.Outgoing.Enqueue(new AgentMessage { StatusUpdates = new AgentMessage.Types.StatusUpdates { Updates = { new AgentMessage.Types.StatusUpdate { FrameworkId = "own" } } } });
        session.Wake();

        Assert.Equal(["Usage", "Usage", "updates own"], await written.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        var e = await Assert.ThrowsAsync<RpcException>(() => session.Completion.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.True(NotLeader.Is(e, out var leader));
        Assert.Equal("10.0.0.9:5050", leader);
        await Assert.ThrowsAsync<IOException>(() => session.SendAsync(new AgentMessage { Usage = new AgentMessage.Types.Usage() }).WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task A_shutdown_is_handed_to_the_participant_and_ends_the_session_as_a_refusal()
    {
        _script.Enqueue(async (requests, responses, context) =>
        {
            await requests.MoveNext(context.CancellationToken);
            await responses.WriteAsync(new MasterMessage { Registered = new MasterMessage.Types.Registered { AgentId = "a1" } });
            await responses.WriteAsync(new MasterMessage { Shutdown = new MasterMessage.Types.Shutdown { Message = "agent a1 was marked gone" } });
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
        });
        var participant = new Participant();

        var session = await LinkSession.OpenAsync(_channel, Address, participant, new LinkSessionOptions(), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));

        var e = await Assert.ThrowsAsync<RpcException>(() => session.Completion.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal((StatusCode.FailedPrecondition, "agent a1 was marked gone"), (e.StatusCode, e.Status.Detail));
        Assert.Equal(["shutdown: agent a1 was marked gone", "ended: RpcException"], participant.Events);
    }

    private sealed class Participant : ILinkParticipant
    {
        public TaskCompletionSource? HoldLaunch { get; init; }

        public ConcurrentQueue<AgentMessage> Outgoing { get; } = new();

        public ConcurrentQueue<string> Events { get; } = new();

        public int Heartbeats;

        public AgentMessage.Types.Register BuildRegister() => new() { AgentInfo = new AgentInfo { Hostname = "h" } };

        public void OnRegistered(MasterMessage.Types.Registered registered, LinkSession session)
        {
            session.Post(new AgentMessage { Usage = new AgentMessage.Types.Usage() });
        }

        public async ValueTask HandleAsync(MasterMessage message, LinkSession session, CancellationToken cancellationToken)
        {
            if (message.MessageCase == MasterMessage.MessageOneofCase.Launch && HoldLaunch is not null)
            {
                // A launch that takes long (the session is cancelled meanwhile and must wait).
                await HoldLaunch.Task;
                Events.Enqueue("launch handled");
            }
        }

        public Task OnShutdownAsync(MasterMessage.Types.Shutdown shutdown)
        {
            Events.Enqueue("shutdown: " + shutdown.Message);
            return Task.CompletedTask;
        }

        public AgentMessage? TakeOutgoing() => Outgoing.TryDequeue(out var m) ? m : null;

        public void OnHeartbeat(ulong sequence, LinkSession session) => Interlocked.Increment(ref Heartbeats);

        public void OnEnded(LinkSession session, Exception? reason) => Events.Enqueue("ended: " + reason?.GetType().Name);
    }

    private sealed class ScriptedLink(LinkSessionTests test) : AgentLink.AgentLinkBase
    {
        public override Task Connect(IAsyncStreamReader<AgentMessage> requestStream, IServerStreamWriter<MasterMessage> responseStream, ServerCallContext context)
            => test._script.TryDequeue(out var step)
                ? step(requestStream, responseStream, context)
                : throw new RpcException(new Status(StatusCode.Unavailable, "script exhausted"));
    }
}
