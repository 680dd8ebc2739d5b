using FsCheck;
using FsCheck.Fluent;
using Sched.V1;
using Scheduler.Master.State;
using Xunit;

namespace Scheduler.Master.Tests.State;

/// <summary>The task book on its own: the framework and agent indexes of live tasks agree after
/// every add, removal, completion and move, the history stays bounded with the latest task of an
/// id, and a removed agent or framework leaves nothing behind.</summary>
public sealed class TaskBookTests
{
    private static TaskBook Book(int maxCompleted = 1000) => new(new MasterOptions { MaxCompletedTasksPerFramework = maxCompleted });

    private static TaskEntry Task(string id, string fw = "f1", string agent = "a1", TaskState state = TaskState.TaskStaging) =>
        TaskEntry.Launched(new TaskInfo { TaskId = id, Name = id }, fw, agent, "r", [], state);

    /// <summary>Checks that the two indexes of live tasks hold the same tasks, each once.</summary>
    private static void AssertConsistent(TaskBook book, IEnumerable<string> frameworks, IEnumerable<string> agents)
    {
        var byFramework = frameworks.SelectMany(book.LiveOf).ToList();
        var byAgent = agents.SelectMany(book.OnAgent).ToList();
        Assert.Equal(book.LiveCount, byFramework.Count);
        Assert.Equal(book.LiveCount, byAgent.Count);
        Assert.Equal(byFramework.ToHashSet(ReferenceEqualityComparer.Instance), byAgent.ToHashSet(ReferenceEqualityComparer.Instance));
        foreach (var task in byFramework)
        {
            Assert.Same(task, book.Live(task.FrameworkId, task.TaskId));
            Assert.Contains(task, book.OnAgent(task.AgentId));
        }
    }

    [Fact]
    public void A_task_moved_to_another_agent_is_live_once_on_the_new_agent_only()
    {
        var book = Book();
        var onA1 = Task("t1", agent: "a1");
        book.Add(onA1);
        book.Add(Task("t2", agent: "a1"));

        // An agent reports t1 after a failover: the entry on a1 is replaced by one on a2.
        var onA2 = Task("t1", agent: "a2", state: TaskState.TaskRunning);
        Assert.True(book.RemoveLive(onA1));
        book.Add(onA2);

        Assert.Same(onA2, book.Live("f1", "t1"));
        Assert.Equal(["t2"], book.OnAgent("a1").Select(t => t.TaskId));
        Assert.Equal([onA2], book.OnAgent("a2"));
        Assert.False(book.RemoveLive(onA1)); // the old entry is no longer the live one
        AssertConsistent(book, ["f1"], ["a1", "a2"]);
    }

    [Fact]
    public void A_second_live_task_of_an_id_is_refused_and_changes_nothing()
    {
        var book = Book();
        var first = Task("t1", agent: "a1");
        book.Add(first);

        Assert.Throws<InvalidOperationException>(() => book.Add(Task("t1", agent: "a2")));

        Assert.Same(first, book.Live("f1", "t1"));
        Assert.Empty(book.OnAgent("a2"));
        Assert.Equal(1, book.LiveCount);
        AssertConsistent(book, ["f1"], ["a1", "a2"]);
    }

    [Fact]
    public void Completing_moves_a_task_to_the_history_and_counts_it()
    {
        var book = Book();
        var done = Task("t1");
        var failed = Task("t2");
        book.Add(done);
        book.Add(failed);
        done.State = TaskState.TaskFinished;
        failed.State = TaskState.TaskFailed;

        book.Complete(done);
        book.Complete(failed);

        Assert.Equal(0, book.LiveCount);
        Assert.Empty(book.OnAgent("a1"));
        Assert.Same(done, book.LatestCompleted("f1", "t1"));
        Assert.Equal(((uint)1, (uint)1), book.Counts("f1"));
        Assert.Throws<InvalidOperationException>(() =>
        {
            var live = Task("t3");
            book.Add(live);
            book.AddCompleted(live); // a live task is completed, not added to the history beside itself
        });
    }

    [Fact]
    public void The_history_is_bounded_oldest_first_and_keeps_the_latest_task_of_an_id()
    {
        var book = Book(maxCompleted: 3);
        var firstT1 = Task("t1", state: TaskState.TaskFailed);
        book.AddCompleted(firstT1);
        book.AddCompleted(Task("t2", state: TaskState.TaskFinished));
        var secondT1 = Task("t1", state: TaskState.TaskFinished);
        book.AddCompleted(secondT1);

        Assert.Equal(["t2", "t1"], book.CompletedOf("f1").Select(t => t.TaskId));
        Assert.Same(secondT1, book.LatestCompleted("f1", "t1"));

        book.AddCompleted(Task("t3", state: TaskState.TaskFinished));
        book.AddCompleted(Task("t4", state: TaskState.TaskFinished));

        Assert.Equal(["t1", "t3", "t4"], book.CompletedOf("f1").Select(t => t.TaskId));
        Assert.Null(book.LatestCompleted("f1", "t2"));
        Assert.Same(secondT1, book.LatestCompleted("f1", "t1"));
        Assert.Equal(((uint)4, (uint)1), book.Counts("f1"));
    }

    [Fact]
    public void Removing_an_agent_returns_its_live_tasks_and_leaves_other_agents_alone()
    {
        var book = Book();
        book.Add(Task("t1", fw: "f1", agent: "a1"));
        book.Add(Task("t2", fw: "f2", agent: "a1"));
        var kept = Task("t3", fw: "f1", agent: "a2");
        book.Add(kept);

        var removed = book.RemoveAgent("a1");

        Assert.Equal(["t1", "t2"], removed.Select(t => t.TaskId).Order());
        Assert.Null(book.Live("f1", "t1"));
        Assert.Null(book.Live("f2", "t2"));
        Assert.Equal([kept], book.LiveOf("f1"));
        Assert.Empty(book.RemoveAgent("a1"));
        AssertConsistent(book, ["f1", "f2"], ["a1", "a2"]);
    }

    [Fact]
    public void A_framework_is_removed_only_without_live_tasks_and_hands_back_its_history()
    {
        var book = Book();
        var task = Task("t1");
        book.Add(task);
        Assert.Throws<InvalidOperationException>(() => book.RemoveFramework("f1"));
        Assert.Same(task, book.Live("f1", "t1"));

        task.State = TaskState.TaskKilled;
        book.Complete(task);
        var history = book.RemoveFramework("f1");

        Assert.Equal([task], history);
        Assert.Empty(book.CompletedOf("f1"));
        Assert.Equal(((uint)0, (uint)0), book.Counts("f1"));
        Assert.Empty(book.RemoveFramework("never-seen"));
    }

    /// <summary>One change to the book: add a task, complete one, move one to another agent,
    /// remove an agent's tasks.</summary>
    public sealed record Change(int Kind, int Framework, int Agent, int Task);

    [Fact]
    public void Any_sequence_of_changes_keeps_the_indexes_consistent_and_the_history_bounded()
    {
        var change = Gen.Choose(0, 3).SelectMany(kind => Gen.Choose(0, 2).SelectMany(fw => Gen.Choose(0, 3).SelectMany(agent => Gen.Choose(0, 9).Select(task => new Change(kind, fw, agent, task)))));
        // Every sequence is valid (a change that does not apply is skipped), so a failure shrinks
        // by dropping changes.
        var sequences = Arb.From(change.ListOf().Select(l => l.ToList()), l => Enumerable.Range(0, l.Count).Select(i => l.Where((_, j) => j != i).ToList()));
        Prop.ForAll(sequences, changes =>
        {
            var book = Book(maxCompleted: 4);
            string[] frameworks = ["f0", "f1", "f2"];
            string[] agents = ["a0", "a1", "a2", "a3"];
            foreach (var c in changes)
            {
                var fw = frameworks[c.Framework];
                var id = $"t{c.Task}";
                var live = book.Live(fw, id);
                switch (c.Kind)
                {
                    case 0 when live is null:
                        book.Add(Task(id, fw, agents[c.Agent]));
                        break;
                    case 1 when live is not null:
                        live.State = c.Agent % 2 == 0 ? TaskState.TaskFinished : TaskState.TaskFailed;
                        book.Complete(live);
                        break;
                    case 2 when live is not null:
                        Assert.True(book.RemoveLive(live));
                        book.Add(Task(id, fw, agents[c.Agent], TaskState.TaskRunning));
                        break;
                    case 3:
                        foreach (var t in book.RemoveAgent(agents[c.Agent]))
                        {
                            Assert.Null(book.Live(t.FrameworkId, t.TaskId));
                        }
                        break;
                    default:
                        break;
                }
                AssertConsistent(book, frameworks, agents);
                foreach (var f in frameworks)
                {
                    Assert.True(book.CompletedOf(f).Count <= 4);
                    Assert.Equal(book.CompletedOf(f).Select(t => t.TaskId).Distinct().Count(), book.CompletedOf(f).Count);
                }
            }
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(200));
    }
}
