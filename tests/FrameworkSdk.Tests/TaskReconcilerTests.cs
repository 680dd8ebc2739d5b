using Scheduler.Resilience;
using Microsoft.Extensions.Time.Testing;
using Sched.V1;
using Xunit;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.FrameworkSdk.Tests;

public sealed class TaskReconcilerTests
{
    [Fact]
    public async Task Asks_explicitly_for_unanswered_tasks_then_implicitly()
    {
        await using var master = await ScriptedMaster.StartAsync();
        await using var client = new SchedulerClient(new SchedulerClientOptions { Masters = [master.Address], Framework = new FrameworkInfo { Name = "r", Roles = { "*" } } });
        client.Start();
        (await master.NextSubscriptionAsync()).SendSubscribed("fw", "s");
        await client.WaitForSubscriptionAsync().WaitAsync(TimeSpan.FromSeconds(10));

        var time = new FakeTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var reconciler = new TaskReconciler(time, new Backoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(4)));
        reconciler.Track(new TaskInfo { TaskId = "a", AgentId = "ag1" });
        reconciler.Track(new TaskInfo { TaskId = "b", AgentId = "ag2" });
        reconciler.Observe(new TaskStatus { TaskId = "c", State = TaskState.TaskFinished });

        Assert.Equal(2, await reconciler.ReconcileAsync(client));
        var first = await master.NextCallAsync<ReconcileRequest>();
        Assert.Equal(["a", "b"], first.Tasks.Select(t => t.TaskId).Order());
        Assert.Equal(0, await reconciler.ReconcileAsync(client)); // not due yet

        reconciler.Observe(new TaskStatus { TaskId = "a", AgentId = "ag1", State = TaskState.TaskRunning });
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(1, await reconciler.ReconcileAsync(client));
        Assert.Equal(["b"], (await master.NextCallAsync<ReconcileRequest>()).Tasks.Select(t => t.TaskId));

        reconciler.Observe(new TaskStatus { TaskId = "b", State = TaskState.TaskUnknown });
        Assert.Equal(TaskState.TaskGone, reconciler.StateOf("b"));
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(0, await reconciler.ReconcileAsync(client));
        Assert.Empty((await master.NextCallAsync<ReconcileRequest>()).Tasks); // implicit round
        Assert.Equal(["a"], reconciler.ActiveTaskIds);
    }
}
