using Sched.V1;
using Scheduler.Agent.StatusUpdates;
using Xunit;

namespace Scheduler.Agent.Tests;

public class StatusUpdateQueueTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("queue-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private StatusUpdateQueue NewQueue() => new(_dir, TimeProvider.System, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));

    private static TaskStatus Status(string task, TaskState state) => new() { TaskId = task, State = state, Uuid = Guid.NewGuid().ToString() };

    [Fact]
    public void Only_the_head_is_sent_and_an_ack_releases_the_next()
    {
        var q = NewQueue();
        var a = Status("t1", TaskState.TaskStarting);
        var b = Status("t1", TaskState.TaskRunning);
        q.Enqueue("fw", a);
        q.Enqueue("fw", b);
        var due = q.TakeDue();
        Assert.Equal([a.Uuid], due.Select(d => d.Status.Uuid));
        Assert.Empty(q.TakeDue()); // backoff: not due again yet
        Assert.False(q.Acknowledge("fw", "t1", b.Uuid)); // not the head
        Assert.True(q.Acknowledge("fw", "t1", a.Uuid));
        Assert.Equal([b.Uuid], q.TakeDue().Select(d => d.Status.Uuid));
    }

    [Fact]
    public void Unacknowledged_updates_survive_a_restart_in_order_and_acked_terminal_tasks_are_forgotten()
    {
        var q = NewQueue();
        var s1 = Status("t1", TaskState.TaskStarting);
        var s2 = Status("t1", TaskState.TaskRunning);
        var s3 = Status("t1", TaskState.TaskFinished);
        var other = Status("t2", TaskState.TaskFailed);
        q.Enqueue("fw", s1);
        q.Enqueue("fw", s2);
        q.Enqueue("fw", s3);
        q.Enqueue("fw", other);
        Assert.True(q.Acknowledge("fw", "t1", s1.Uuid));
        Assert.True(q.Acknowledge("fw", "t2", other.Uuid));

        var reloaded = NewQueue();
        Assert.Equal([s2.Uuid, s3.Uuid], reloaded.Pending("fw", "t1").Select(s => s.Uuid));
        Assert.Empty(reloaded.Pending("fw", "t2"));
        Assert.Null(reloaded.Latest("fw", "t2"));
        Assert.True(reloaded.Acknowledge("fw", "t1", s2.Uuid));
        Assert.True(reloaded.Acknowledge("fw", "t1", s3.Uuid));
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public void A_torn_record_at_the_end_is_ignored()
    {
        var q = NewQueue();
        var s1 = Status("t1", TaskState.TaskRunning);
        q.Enqueue("fw", s1);
        var file = Directory.GetFiles(_dir).Single();
        File.AppendAllText(file, "\u0010\0\0\0garbage");
        var reloaded = NewQueue();
        Assert.Equal([s1.Uuid], reloaded.Pending("fw", "t1").Select(s => s.Uuid));
    }
}
