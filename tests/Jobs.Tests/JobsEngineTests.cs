using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Sched.V1;
using Scheduler.Jobs.Engine;
using Scheduler.Jobs.State;
using Scheduler.Master.Registry;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Jobs.Tests;

/// <summary>The engine driven directly (offers and status updates in), on the embedded file store.</summary>
public sealed class JobsEngineTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "jobs-engine-" + Guid.NewGuid().ToString("N")[..10]);
    private IRegistryStore _registry = null!;
    private JobsEngine _engine = null!;

    public async Task InitializeAsync()
    {
        _registry = FileRegistryStore.Open(_dir);
        var (store, state) = await JobStateStore.LoadAsync(_registry, null, int.MaxValue, CancellationToken.None);
        _engine = new JobsEngine(store, state, new FakeTimeProvider(DateTimeOffset.Parse("2026-12-04T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture)), NullLogger.Instance);
    }

    public async Task DisposeAsync()
    {
        await _registry.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private static Offer AnOffer(string id) => new()
    {
        Id = id,
        AgentId = "agent-1",
        Hostname = "host-1",
        Resources = { new Resource { Name = "cpus", Scalar = 4 }, new Resource { Name = "mem", Scalar = 4096 } },
    };

    [Fact]
    public void A_launch_the_master_never_saw_is_placed_again_without_counting_a_failure()
    {
        _engine.Submit("""
            name: web
            type: service
            task: {command: 'sleep 600', resources: {cpus: 0.5, mem: 32}}
            """, "web.yaml");
        var first = Assert.Single(Assert.Single(_engine.Place([AnOffer("o1")]).Launches).Value);

        // After a failover the master answers the stored task id as unknown: the launch never reached it.
        _engine.Observe(new TaskStatus { TaskId = first.TaskId, AgentId = "agent-1", State = TaskState.TaskUnknown, Message = "agent 'agent-1' is registered and does not have task" });
        var instance = Assert.Single(_engine.Get("web", history: false).Job.Instances);
        Assert.Equal("pending", instance.State);
        Assert.Equal(0u, instance.Attempts);

        var second = Assert.Single(Assert.Single(_engine.Place([AnOffer("o2")]).Launches).Value);
        Assert.NotEqual(first.TaskId, second.TaskId);
        Assert.Equal("staging", Assert.Single(_engine.Get("web", history: false).Job.Instances).State);
    }

    [Fact]
    public void A_replaced_task_reported_ended_again_neither_restarts_nor_fails_the_rollout()
    {
        const string Web = """
            name: web
            type: service
            task: {command: 'sleep 600', env: {V: "{V}"}, resources: {cpus: 0.5, mem: 32}}
            """;
        _engine.Submit(Web.Replace("{V}", "1", StringComparison.Ordinal), "web.yaml");
        var first = Assert.Single(Assert.Single(_engine.Place([AnOffer("o1")]).Launches).Value);
        _engine.Observe(new TaskStatus { TaskId = first.TaskId, AgentId = "agent-1", State = TaskState.TaskRunning });

        _engine.Submit(Web.Replace("{V}", "2", StringComparison.Ordinal), "web.yaml");
        var kill = Assert.Single(_engine.Tick().Kills);
        Assert.Equal(first.TaskId, kill.TaskId);
        var killed = new TaskStatus { TaskId = first.TaskId, AgentId = "agent-1", State = TaskState.TaskKilled, Message = "the task was killed" };
        _engine.Observe(killed);
        // The same end once more (the agent resent it to a new leader), then a stale report of it running.
        Assert.Empty(_engine.Observe(killed).Kills);
        var stale = Assert.Single(_engine.Observe(new TaskStatus { TaskId = first.TaskId, AgentId = "agent-1", State = TaskState.TaskRunning }).Kills);
        Assert.Equal(first.TaskId, stale.TaskId);

        var job = _engine.Get("web", history: true).Job;
        var instance = Assert.Single(job.Instances);
        Assert.Equal(("pending", 2u, 0u), (instance.State, instance.Version, instance.Attempts));
        Assert.DoesNotContain(job.Events, e => e.Message.Contains("rollout failed", StringComparison.Ordinal) || e.Message.Contains("restart", StringComparison.Ordinal));

        var second = Assert.Single(Assert.Single(_engine.Place([AnOffer("o2")]).Launches).Value);
        _engine.Observe(new TaskStatus { TaskId = second.TaskId, AgentId = "agent-1", State = TaskState.TaskRunning });
        _engine.Tick();
        Assert.Contains(_engine.Get("web", history: true).Job.Events, e => e.Message == "version 2 rolled out: 1 instances healthy");
    }
}
