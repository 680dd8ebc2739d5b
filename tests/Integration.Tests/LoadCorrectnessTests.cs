using System.Collections.Concurrent;
using System.Diagnostics;
using Sched.V1;
using Scheduler.Agent.Simulation;
using Scheduler.FrameworkSdk;
using Scheduler.Protocol;
using Scheduler.Rpc;
using Xunit;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Integration.Tests;

/// <summary>
/// A small load run against a real master process: 100 simulated agents (real AgentLink streams,
/// mock executor semantics), 5,000 short tasks launched by an SDK framework. Checks exactly-once
/// completion at the framework, that every update was acknowledged, and that the master keeps no
/// live task and no outstanding offer afterwards.
/// </summary>
public sealed class LoadCorrectnessTests
{
    private const int Agents = 100;
    private const int Tasks = 5_000;
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(60);

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

            var framework = new MiniLoadFramework(master.Address, Tasks, runMs: 20);
            await using (framework)
            {
                await framework.AllTerminal.WaitAsync(RunTimeout);

                // Exactly once: every task id reached TASK_FINISHED, and after dedup by uuid each task
                // has exactly one terminal update (re-sent copies share the uuid).
                Assert.Equal(Tasks, framework.TerminalUuids.Count);
                Assert.All(framework.TerminalUuids, kv => Assert.Single(kv.Value.Distinct()));
                Assert.Empty(framework.NonFinished);
                Assert.Equal(Tasks, framework.RunningSeen.Count);

                // Every update acknowledged by the framework (checked before teardown: afterwards the
                // master acknowledges updates of the removed framework itself). The agents forget a
                // task only once its terminal update is acknowledged, in order.
                await WaitUntilAsync(() => host.ActiveTasks == 0, TimeSpan.FromSeconds(30), () => $"{host.ActiveTasks} tasks still hold unacknowledged updates");
                Assert.Equal(2L * Tasks, Interlocked.Read(ref host.Counters.Acks)); // RUNNING + FINISHED per task

                using var op = RpcChannel.ForAddress(master.Address);
                var live = await op.AsyncUnaryCall(OperatorMethods.GetTasks, new GetTasksRequest()).ResponseAsync.WaitAsync(TimeSpan.FromSeconds(30));
                Assert.Empty(live.Tasks);

                await framework.Client.TeardownAsync().WaitAsync(TimeSpan.FromSeconds(30));
                await WaitUntilAsync(async () =>
                {
                    var state = await op.AsyncUnaryCall(OperatorMethods.GetState, new GetStateRequest()).ResponseAsync.WaitAsync(TimeSpan.FromSeconds(30));
                    return state.Agents.All(a => a.Offered.Count == 0) && state.Frameworks.All(f => f.Offered.Count == 0) && state.Tasks.Count == 0;
                }, TimeSpan.FromSeconds(20), () => "offers still outstanding (or live tasks) after teardown");
                Assert.Null(host.Refusal);
            }
        }
    }

    private static Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, Func<string> what) =>
        WaitUntilAsync(() => Task.FromResult(condition()), timeout, what);

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<string> what)
    {
        var sw = Stopwatch.StartNew();
        while (!await condition())
        {
            if (sw.Elapsed > timeout)
            {
                Assert.Fail($"{what()} after {timeout.TotalSeconds:0} s");
            }
            await Task.Delay(100); // polling the observable state, bounded by the timeout
        }
    }

    /// <summary>
    /// A minimal SDK framework for this test (bench/Load has its own richer one; test projects
    /// cannot reference the benchmark): launches MOCK tasks on every offer until the total is
    /// reached, records terminal updates by task and uuid; the SDK acknowledges (auto-ack).
    /// </summary>
    private sealed class MiniLoadFramework : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly TaskCompletionSource _allTerminal = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Task _loop;
        private readonly int _total;
        private readonly TimeSpan _runFor;
        private int _next;

        public MiniLoadFramework(string master, int total, int runMs)
        {
            _total = total;
            _runFor = TimeSpan.FromMilliseconds(runMs);
            Client = new SchedulerClient(new SchedulerClientOptions
            {
                Masters = [master],
                Framework = new FrameworkInfo { Name = "load-correctness", Roles = { "load" } },
                CallTimeout = TimeSpan.FromSeconds(30),
            });
            _loop = Task.Run(RunAsync);
        }

        public SchedulerClient Client { get; }

        public ConcurrentDictionary<string, List<string>> TerminalUuids { get; } = new(StringComparer.Ordinal);

        public ConcurrentDictionary<string, bool> RunningSeen { get; } = new(StringComparer.Ordinal);

        public ConcurrentBag<TaskStatus> NonFinished { get; } = [];

        public Task AllTerminal => _allTerminal.Task;

        private async Task RunAsync()
        {
            try
            {
                await foreach (var e in Client.ReadEventsAsync(_stop.Token))
                {
                    if (e.EventCase == Event.EventOneofCase.Offers)
                    {
                        foreach (var offer in e.Offers.Offers_)
                        {
                            await LaunchAsync(offer);
                        }
                    }
                    else if (e.EventCase == Event.EventOneofCase.Update)
                    {
                        Record(e.Update.Status);
                    }
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
            }
            catch (Exception ex)
            {
                _allTerminal.TrySetException(ex);
            }
        }

        private async Task LaunchAsync(Offer offer)
        {
            var fit = (int)Math.Min(Math.Floor(OfferResources.Scalar(offer.Resources, "cpus") / 0.01 + 1e-6), OfferResources.Scalar(offer.Resources, "mem"));
            var n = Math.Min(fit, _total - _next);
            if (n <= 0)
            {
                await Client.DeclineAsync([offer.Id], refuseSeconds: 3600);
                return;
            }
            var tasks = new List<TaskInfo>(n);
            for (var i = 0; i < n; i++)
            {
                tasks.Add(new TaskBuilder($"t{_next++}").Name("load").Mock(_runFor).Cpus(0.01).Mem(1).Build(offer));
            }
            _ = Client.LaunchAsync(offer, tasks, refuseSeconds: _next >= _total ? 3600 : 0);
        }

        private void Record(TaskStatus status)
        {
            if (status.State == TaskState.TaskRunning)
            {
                RunningSeen.TryAdd(status.TaskId, true);
            }
            if (!status.State.IsTerminal())
            {
                return;
            }
            if (status.State != TaskState.TaskFinished)
            {
                NonFinished.Add(status);
            }
            var list = TerminalUuids.GetOrAdd(status.TaskId, _ => []);
            lock (list)
            {
                list.Add(status.Uuid);
            }
            if (TerminalUuids.Count == _total)
            {
                _allTerminal.TrySetResult();
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await Client.DisposeAsync();
            await _loop.WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { }, TaskScheduler.Default);
            _stop.Dispose();
        }
    }
}
