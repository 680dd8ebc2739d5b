using Microsoft.Extensions.Logging.Abstractions;
using Sched.V1;
using Scheduler.Allocation;
using Scheduler.Master.Loop;
using Scheduler.Master.Registry;
using Scheduler.Master.Telemetry;
using Xunit;

namespace Scheduler.Master.Tests.Scale;

/// <summary>Agent liveness must not depend on the depth of the master loop's command queue. (The
/// timeout itself is tested on virtual time: Direct/VirtualTimeTests.)</summary>
public sealed class LivenessTests
{
    [Fact]
    public async Task Heartbeat_is_answered_on_the_stream_even_when_the_loop_does_not_run()
    {
        await using var store = new InMemoryRegistryStore();
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
}
