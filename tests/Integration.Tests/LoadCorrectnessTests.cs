using Sched.V1;
using Scheduler.Simulation;
using Scheduler.Protocol;
using Grpc.Core;
using Xunit;
using Scheduler.Channels;

namespace Scheduler.Integration.Tests;

/// <summary>
/// A small load run against a real master process: 100 simulated agents (real AgentLink streams,
/// mock executor semantics), 5,000 short tasks launched by the load generator <see cref="LoadFramework"/> (src/Simulation, the one bench/Load runs)
/// (the benchmark's own load generator, so the figures and this check exercise the same code). Checks exactly-once
/// completion at the framework, that every update was acknowledged, and that the master keeps no
/// live task and no outstanding offer afterwards.
/// </summary>
public sealed class LoadCorrectnessTests
{
    private const int Agents = 100;
    private const int Tasks = 5_000;
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Checks of the cluster's state while 100 agents run are spaced wider than usual.</summary>
    private static readonly TimeSpan PollEvery = TimeSpan.FromMilliseconds(100);

    [Fact]
    public async Task EveryTaskFinishesExactlyOnceAndTheMasterEndsClean()
    {
        await using var cluster = new ClusterFixture();
        var master = await cluster.StartMasterAsync();
        var host = new SimulatedAgentHost(new SimulatedAgentOptions
        {
            Masters = [master.Address],
            Count = Agents,
            Resources = "cpus:4;mem:4096;disk:1000",
            HostnamePrefix = "it-load-",
        });
        await using (host)
        {
            host.Start();
            await host.WaitForRegistrationAsync(TimeSpan.FromSeconds(30));

            var framework = new LoadFramework(master.Address, "load-correctness", Tasks, runMs: 20);
            await using (framework)
            {
                framework.Start();
                await framework.AllTerminal.WaitAsync(RunTimeout);

                // Exactly once: every task reached a terminal state, TASK_FINISHED, and every
                // further terminal update of a task is a re-send of the same one (same uuid).
                Assert.Equal(Tasks, framework.Terminal);
                Assert.Equal(0, framework.NotFinished);
                Assert.Equal(0, framework.DuplicateTerminals);
                Assert.Equal(Tasks, framework.Running);
                Assert.Equal(0L, framework.Failed);

                // Every update acknowledged by the framework (checked before teardown: afterwards the
                // master acknowledges updates of the removed framework itself). The agents forget a
                // task only once its terminal update is acknowledged, in order.
                await Poll.UntilAsync(() => host.ActiveTasks == 0, TimeSpan.FromSeconds(30), () => $"every update acknowledged ({host.ActiveTasks} tasks still hold unacknowledged updates)", PollEvery);
                Assert.Equal(2L * Tasks, Interlocked.Read(ref host.Counters.Acks)); // RUNNING + FINISHED per task
                Assert.Equal(0L, Interlocked.Read(ref framework.AckFailures));
                Assert.Equal(0, framework.DuplicateTerminals);

                using var op = GrpcChannels.ForAddress(master.Address);
                var live = await op.AsyncUnaryCall(OperatorMethods.GetTasks, new GetTasksRequest()).ResponseAsync.WaitAsync(TimeSpan.FromSeconds(30));
                Assert.Empty(live.Tasks);

                await framework.TeardownAsync().WaitAsync(TimeSpan.FromSeconds(30));
                await Poll.UntilAsync(async () =>
                {
                    var state = await op.AsyncUnaryCall(OperatorMethods.GetState, new GetStateRequest()).ResponseAsync.WaitAsync(TimeSpan.FromSeconds(30));
                    return state.Agents.All(a => a.Offered.Count == 0) && state.Frameworks.All(f => f.Offered.Count == 0) && state.Tasks.Count == 0;
                }, TimeSpan.FromSeconds(20), "no offers outstanding and no live tasks after teardown", PollEvery);
                Assert.Null(host.Refusal);
            }
        }
    }
}
