using Scheduler.Resilience;
using System.Collections.Concurrent;
using Sched.V1;
using Xunit;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.FrameworkSdk.Tests;

public sealed class SchedulerDriverTests
{
    [Fact]
    public async Task Dispatches_events_to_callbacks_in_order_and_acknowledges_after_OnUpdate()
    {
        await using var master = await ScriptedMaster.StartAsync();
        var recorder = new Recorder();
        await using var driver = new SchedulerDriver(recorder, new SchedulerClientOptions
        {
            Masters = [master.Address],
            Framework = new FrameworkInfo { Name = "driver-test", Roles = { "*" } },
            Backoff = new Backoff(TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(50)),
        });
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var run = driver.RunAsync(stop.Token);

        var sub = await master.NextSubscriptionAsync();
        sub.SendSubscribed("fw-1", "s1");
        var offers = new Event { Offers = new Event.Types.Offers() };
        offers.Offers.Offers_.Add(new Offer { Id = "o1", AgentId = "a1" });
        sub.Send(offers);
        sub.Send(new Event { Rescind = new Event.Types.Rescind { OfferId = "o1" } });
        sub.Send(new Event { Update = new Event.Types.Update { Status = new TaskStatus { TaskId = "t1", AgentId = "a1", State = TaskState.TaskFinished, Uuid = "u1" } } });
        var ack = await master.NextCallAsync<AcknowledgeRequest>();
        Assert.Equal("u1", ack.Uuid);
        Assert.Contains("update t1", recorder.Calls); // the callback ran before the acknowledgement

        sub.Close(); // the master drops the stream: OnDisconnected, then a new subscription
        var again = await master.NextSubscriptionAsync();
        Assert.Equal("fw-1", again.Request.FrameworkInfo.Id);
        again.SendSubscribed("fw-1", "s2");
        sub = again;
        sub.Send(new Event { Error = new Event.Types.Error { Message = "framework removed by operator" } });
        await run.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(
            ["subscribed s1", "offers o1", "rescind o1", "update t1", "disconnected", "subscribed s2", "error framework removed by operator"],
            recorder.Calls.Select(c => c.StartsWith("disconnected", StringComparison.Ordinal) ? "disconnected" : c));
    }

    /// <summary>The master answers a framework's own Teardown with an error event on the stream
    /// before the call returns; the driver must not report it as an error (HelloFramework printed
    /// "framework error: … torn down by the framework" on success).</summary>
    [Fact]
    public async Task The_error_event_of_the_frameworks_own_teardown_is_not_reported()
    {
        await using var master = await ScriptedMaster.StartAsync();
        var recorder = new Recorder();
        await using var driver = new SchedulerDriver(recorder, new SchedulerClientOptions
        {
            Masters = [master.Address],
            Framework = new FrameworkInfo { Name = "teardown-test", Roles = { "*" } },
        });
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var run = driver.RunAsync(stop.Token);
        var sub = await master.NextSubscriptionAsync();
        sub.SendSubscribed("fw-1", "s1");
        await recorder.Seen("subscribed s1").WaitAsync(TimeSpan.FromSeconds(10));

        master.BeforeAnswer = async request =>
        {
            if (request is TeardownRequest)
            {
                // As the real master does: the stream's error first, then the call's answer.
                // The error event ends the driver's run; it has been dispatched (or not) by then.
                sub.Send(new Event { Error = new Event.Types.Error { Message = "framework fw-1 torn down by the framework" } });
                await run.WaitAsync(TimeSpan.FromSeconds(10));
            }
        };
        await driver.Client.TeardownAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.DoesNotContain(recorder.Calls, c => c.StartsWith("error", StringComparison.Ordinal));
    }

    private sealed class Recorder : IScheduler
    {
        private readonly ConcurrentDictionary<string, TaskCompletionSource> _seen = new();

        public ConcurrentQueue<string> Calls { get; } = new();

        /// <summary>Completes once <paramref name="call"/> has been recorded.</summary>
        public Task Seen(string call) => _seen.GetOrAdd(call, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

        public Task OnSubscribedAsync(SchedulerClient client, Event.Types.Subscribed subscribed, CancellationToken cancellationToken) => Add($"subscribed {subscribed.StreamId}");

        public Task OnOffersAsync(SchedulerClient client, IReadOnlyList<Offer> offers, CancellationToken cancellationToken) => Add("offers " + string.Join(",", offers.Select(o => o.Id)));

        public Task OnRescindAsync(SchedulerClient client, string offerId, CancellationToken cancellationToken) => Add("rescind " + offerId);

        public Task OnUpdateAsync(SchedulerClient client, TaskStatus status, CancellationToken cancellationToken) => Add("update " + status.TaskId);

        public Task OnErrorAsync(SchedulerClient client, string message, CancellationToken cancellationToken) => Add("error " + message);

        public Task OnDisconnectedAsync(SchedulerClient client, string reason, CancellationToken cancellationToken) => Add("disconnected " + reason);

        private Task Add(string call)
        {
            Calls.Enqueue(call);
            _seen.GetOrAdd(call, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
            return Task.CompletedTask;
        }
    }
}
