using Microsoft.Extensions.Logging.Abstractions;
using Sched.V1;
using Scheduler.Allocation;
using Scheduler.Master.Loop;
using Scheduler.Master.Registry;
using Scheduler.Master.Telemetry;
using Scheduler.Master.Tests.Harness;
using Xunit;

namespace Scheduler.Master.Tests.Scale;

/// <summary>Agent liveness must not depend on the depth of the master loop's command queue.</summary>
public sealed class LivenessTests
{
    [Fact]
    public async Task Heartbeat_is_answered_on_the_stream_even_when_the_loop_does_not_run()
    {
        var dir = Directory.CreateTempSubdirectory("sched-liveness-");
        try
        {
            await using var store = FileRegistryStore.Open(dir.FullName);
            await using var writer = new RegistryWriter(store, NullLogger.Instance, () => { }, CancellationToken.None);
            using var metrics = new MasterMetrics();
            var options = new MasterOptions();
            // The loop is constructed but never run: a command queued to it would wait forever.
            var loop = new MasterLoop(options, TimeProvider.System, new HierarchicalDrfAllocator(new AllocatorOptions(), TimeProvider.System, new Random(1)),
                writer, new MasterInfo { Id = "m1", Address = "127.0.0.1:1" }, NullLogger.Instance, metrics, () => null);
            var session = loop.OpenAgentLink();

            // Before registration a heartbeat is not answered (it goes to the loop, which refuses it).
            loop.Receive(session, new AgentMessage { Heartbeat = new AgentMessage.Types.Heartbeat { Sequence = 1 } });
            Assert.False(session.Outbox.TryRead(out _));

            session.AgentId = "agent-1";
            var before = DateTimeOffset.UtcNow;
            loop.Receive(session, new AgentMessage { Heartbeat = new AgentMessage.Types.Heartbeat { Sequence = 7 } });
            Assert.True(session.Outbox.TryRead(out var ping));
            Assert.Equal(MasterMessage.MessageOneofCase.Ping, ping.MessageCase);
            Assert.Equal(7UL, ping.Ping.Sequence);
            Assert.True(session.LastHeard >= before);
            Assert.True(session.LastHeartbeat >= before);

            // Any other message also proves the agent alive, but is handled on the loop only.
            var heartbeatAt = session.LastHeartbeat;
            loop.Receive(session, new AgentMessage { Usage = new AgentMessage.Types.Usage() });
            Assert.False(session.Outbox.TryRead(out _));
            Assert.True(session.LastHeard >= heartbeatAt);
            Assert.Equal(heartbeatAt, session.LastHeartbeat);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Silent_agent_on_an_open_stream_times_out_while_a_heartbeating_one_stays_active()
    {
        await using var cluster = await Cluster.StartAsync(o =>
        {
            o.AgentTimeout = TimeSpan.FromSeconds(1);
            o.HeartbeatInterval = TimeSpan.FromMilliseconds(200);
        });
        var alive = await cluster.AddAgentAsync();
        var silent = await cluster.AddAgentAsync();
        silent.SendHeartbeats = false;

        await Poll.UntilAsync(
            async () => (await cluster.Master.GetAgentsAsync()).Single(a => a.Info.Id == silent.AgentId).Status == AgentStatus.AgentUnreachable,
            TimeSpan.FromSeconds(10), "the silent agent to be marked unreachable");
        var agents = await cluster.Master.GetAgentsAsync();
        Assert.Equal(AgentStatus.AgentActive, agents.Single(a => a.Info.Id == alive.AgentId).Status);
        Assert.True(agents.Single(a => a.Info.Id == alive.AgentId).LastHeartbeatTime > 0);
    }
}
