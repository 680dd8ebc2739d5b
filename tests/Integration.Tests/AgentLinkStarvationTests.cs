using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Scheduler.Agent;
using Scheduler.Channels;
using Scheduler.Protocol;
using Sched.V1;
using Xunit;

namespace Scheduler.Integration.Tests;

/// <summary>
/// An agent whose thread pool is starved (every pool thread held by blocked work, as file reads
/// blocked in <c>open()</c> on a task's FIFO once held them) against a real master process: once
/// the work is released the agent's link comes back and stays, with no flapping between
/// unreachable and registered.
/// </summary>
public sealed class AgentLinkStarvationTests : IAsyncDisposable
{
    private readonly ClusterFixture _cluster = new();

    public ValueTask DisposeAsync() => _cluster.DisposeAsync();

    [Fact]
    public async Task After_thread_pool_starvation_the_agent_re_registers_and_stays_registered()
    {
        var master = await _cluster.StartMasterAsync();
        var masterLog = Directory.GetFiles(_cluster.LogDir, "master0-*.log").Single();
        var logs = new AgentLogs();
        using var loggers = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Information).AddProvider(logs));
        var work = Path.Combine(_cluster.WorkDir, "agent-in-process");
        var options = new AgentOptions { WorkDir = work, Resources = "cpus:2;mem:1024", Isolation = "none", Listen = "127.0.0.1:0" };
        options.Masters.Add(master.Address);
        using var stop = new CancellationTokenSource();
        var run = AgentHost.RunAsync(options, loggers, stop.Token);
        try
        {
            using var channel = GrpcChannels.ForAddress(master.Address);
            async Task<AgentState?> AgentAsync() =>
                (await channel.AsyncUnaryCall(OperatorMethods.GetAgents, new GetAgentsRequest()).ResponseAsync).Agents.SingleOrDefault();
            await Poll.UntilAsync(async () => (await AgentAsync())?.Status == AgentStatus.AgentActive, TimeSpan.FromSeconds(30), "the agent to register");
            var id = (await AgentAsync())!.Info.Id;

            // Starve for 8 s (four agent timeouts): far more blocking work items than the pool has
            // threads. The fault's clock runs on its own thread, as the pool is not there to
            // await on (nor to copy the master's output into its log, which is read afterwards).
            using var release = new ManualResetEventSlim();
            var blocked = 0;
            for (var i = 0; i < 400; i++)
            {
                ThreadPool.UnsafeQueueUserWorkItem(_ =>
                {
                    Interlocked.Increment(ref blocked);
                    release.Wait();
                }, null);
            }
            var released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var fault = new Thread(() =>
            {
                Thread.Sleep(TimeSpan.FromSeconds(8)); // the fault's duration
                release.Set();
                released.SetResult();
            }) { IsBackground = true };
            fault.Start();
            await released.Task.WaitAsync(TimeSpan.FromSeconds(60));
            var starvedThreads = Volatile.Read(ref blocked);
            await Poll.UntilAsync(() => UnreachableMarks(masterLog, id) > 0, TimeSpan.FromSeconds(30),
                () => $"the master to have marked the starved agent unreachable ({starvedThreads} pool threads blocked)");

            // Back: registered again within a few agent timeouts …
            await Poll.UntilAsync(async () => (await AgentAsync())?.Status == AgentStatus.AgentActive, TimeSpan.FromSeconds(30),
                () => "the agent to register again; agent log:\n" + logs.Text);
            var marks = UnreachableMarks(masterLog, id);

            // … and stays: no new unreachable mark over five agent timeouts (2 s each).
            var until = DateTime.UtcNow.AddSeconds(10);
            while (DateTime.UtcNow < until)
            {
                Assert.True(UnreachableMarks(masterLog, id) == marks && (await AgentAsync())?.Status == AgentStatus.AgentActive,
                    $"the agent flapped after the starvation ended ({starvedThreads} pool threads had been blocked); master log:\n{string.Join("\n", MasterLogLines(masterLog).TakeLast(30))}\nagent log:\n{logs.Text}");
                await Task.Delay(200);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await run.WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    private static string[] MasterLogLines(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Split('\n');
    }

    private static int UnreachableMarks(string path, string id) => MasterLogLines(path).Count(l => l.Contains($"Agent {id} unreachable", StringComparison.Ordinal));

    private sealed class AgentLogs : ILoggerProvider
    {
        private readonly ConcurrentQueue<string> _lines = new();

        public string Text => string.Join("\n", _lines.TakeLast(60));

        public ILogger CreateLogger(string categoryName) => new Logger(this);

        public void Dispose()
        {
        }

        private sealed class Logger(AgentLogs owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
                => owner._lines.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel} {formatter(state, exception)}");
        }
    }
}
