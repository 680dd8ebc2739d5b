using Grpc.Net.Client;
using Sched.V1;
using Scheduler.FrameworkSdk;
using Scheduler.Protocol;
using Grpc.Core;
using Xunit;
using Scheduler.Channels;

namespace Scheduler.Integration.Tests;

/// <summary>Framework failover, agent crash and master restart, each on its own cluster.</summary>
public sealed class FaultToleranceTests
{
    [Fact]
    public async Task Framework_failover_within_its_timeout_keeps_tasks_and_after_it_they_are_killed()
    {
        await using var cluster = new ClusterFixture();
        await cluster.StartMasterAsync();
        await cluster.StartAgentAsync();
        const string Marker = "61.2345";

        var first = new TestFramework(cluster.MasterAddress, "it-failover", failoverTimeout: 4) { TeardownOnDispose = false };
        var task = await first.LaunchAsync(new TaskBuilder("long").Shell($"exec sleep {Marker}").Cpus(0.1).Mem(32));
        await first.WaitForStateAsync(task.TaskId, TaskState.TaskRunning);
        var id = await first.SubscribedAsync();
        await first.DisposeAsync(); // the scheduler "crashes"

        // A new instance takes over with the same id in time: the task is still there.
        var second = new TestFramework(cluster.MasterAddress, "it-failover", failoverTimeout: 4, frameworkId: id) { TeardownOnDispose = false };
        Assert.Equal(id, await second.SubscribedAsync());
        await second.Client.ReconcileAsync([(task.TaskId, task.AgentId)]);
        var reconciled = await second.WaitForUpdateAsync(u => u.TaskId == task.TaskId);
        Assert.Equal(TaskState.TaskRunning, reconciled.State);
        Assert.True(ProcessesWith(Marker) > 0);

        // Gone for longer than the failover timeout: the framework is removed and its task killed.
        await second.DisposeAsync();
        using var master = new MasterProbe(cluster.MasterAddress);
        await master.WaitUntilAsync(async () =>
            (await master.CallAsync(OperatorMethods.GetFrameworks, new GetFrameworksRequest())).Frameworks.All(f => f.Info.Id != id)
            && ProcessesWith(Marker) == 0, TimeSpan.FromSeconds(30), "the framework to be removed and its task killed");
    }

    [Fact]
    public async Task A_crashed_agent_makes_its_tasks_unreachable_and_they_come_back_with_it()
    {
        await using var cluster = new ClusterFixture();
        await cluster.StartMasterAsync();
        var agent = await cluster.StartAgentAsync();
        await using var fw = new TestFramework(cluster.MasterAddress, "it-agent-crash");
        var task = await fw.LaunchAsync(new TaskBuilder("survivor").Shell("exec sleep 62.345").Cpus(0.1).Mem(32));
        await fw.WaitForStateAsync(task.TaskId, TaskState.TaskRunning);

        await ClusterFixture.KillAsync(agent); // SIGKILL: the task's supervisor survives it
        var unreachable = await fw.WaitForStateAsync(task.TaskId, TaskState.TaskUnreachable, TimeSpan.FromSeconds(30));
        Assert.Equal(agent.AgentId, unreachable.AgentId);

        var id = agent.AgentId;
        await cluster.RestartAsync(agent);
        Assert.Equal(id, agent.AgentId); // same agent, recovered from its checkpoint
        var seen = fw.Updates.Count;
        using var probe = new MasterProbe(cluster.MasterAddress);
        await probe.WaitUntilAsync(async () =>
        {
            await fw.Client.ReconcileAsync([(task.TaskId, task.AgentId)]);
            return fw.Updates.Skip(seen).Any(u => u.TaskId == task.TaskId && u.State == TaskState.TaskRunning);
        }, TimeSpan.FromSeconds(30), "the task to be reconciled as running");

        await fw.Client.KillAsync(task.TaskId);
        await fw.WaitForStateAsync(task.TaskId, TaskState.TaskKilled);
    }

    [Fact]
    public async Task After_a_master_restart_agents_and_frameworks_come_back_and_tasks_are_reconciled()
    {
        await using var cluster = new ClusterFixture();
        var master = await cluster.StartMasterAsync();
        await cluster.StartAgentAsync();
        await using var fw = new TestFramework(cluster.MasterAddress, "it-master-restart");
        var task = await fw.LaunchAsync(new TaskBuilder("steady").Shell("exec sleep 63.456").Cpus(0.1).Mem(32));
        await fw.WaitForStateAsync(task.TaskId, TaskState.TaskRunning);
        var id = await fw.SubscribedAsync();

        await ClusterFixture.KillAsync(master);
        await cluster.RestartAsync(master);

        using var probe = new MasterProbe(cluster.MasterAddress);
        var seen = fw.Updates.Count;
        await probe.WaitUntilAsync(async () =>
        {
            if (!fw.Client.IsConnected)
            {
                return false;
            }
            await fw.Client.ReconcileAsync([(task.TaskId, task.AgentId)]);
            return fw.Updates.Skip(seen).Any(u => u.TaskId == task.TaskId && u.State == TaskState.TaskRunning);
        }, TimeSpan.FromSeconds(40), "the framework to re-subscribe and its task to be reconciled as running");
        Assert.Equal(id, fw.Client.FrameworkId);
        await fw.Client.KillAsync(task.TaskId);
        await fw.WaitForStateAsync(task.TaskId, TaskState.TaskKilled);
    }

    /// <summary>How many processes have <paramref name="marker"/> in their command line.</summary>
    private static int ProcessesWith(string marker) => Directory.EnumerateDirectories("/proc")
        .Where(d => int.TryParse(Path.GetFileName(d), out _))
        .Count(d =>
        {
            try
            {
                return File.ReadAllText(Path.Combine(d, "cmdline")).Replace('\0', ' ').Contains(marker, StringComparison.Ordinal);
            }
            catch (IOException)
            {
                return false;
            }
        });
}

/// <summary>Operator calls against a master, and waiting for a condition to hold.</summary>
/// <summary>Calls one master directly (no leader following), each call with <paramref name="deadline"/>
/// (default 5 s; shorter where a frozen master must not stall the caller).</summary>
public sealed class MasterProbe(string address, TimeSpan? deadline = null) : IDisposable
{
    private readonly GrpcChannel _channel = GrpcChannels.ForAddress(address);
    private readonly TimeSpan _deadline = deadline ?? TimeSpan.FromSeconds(5);

    public async Task<TResponse> CallAsync<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request)
        where TRequest : class, Google.Protobuf.IMessage<TRequest>
        where TResponse : class, Google.Protobuf.IMessage<TResponse>
    {
        using var call = _channel.AsyncUnaryCall(method, request, new CallOptions(deadline: DateTime.UtcNow + _deadline));
        return await call.ResponseAsync;
    }

    /// <summary>Re-checks <paramref name="condition"/> (every 250 ms) until it holds or the time is
    /// up; a failed call (the cluster may be failing over) counts as "not yet" and is reported if the
    /// time runs out.</summary>
    public Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        Exception? last = null;
        return Poll.UntilAsync(async () =>
        {
            try
            {
                return await condition();
            }
            catch (Exception e) when (e is RpcException or SchedulerException)
            {
                last = e;
                return false;
            }
        }, timeout, () => what + (last is null ? "" : $" (last error: {last.Message})"), TimeSpan.FromMilliseconds(250));
    }

    public void Dispose() => _channel.Dispose();
}
