using Sched.V1;
using Scheduler.Master.State;
using Xunit;

namespace Scheduler.Master.Tests.State;

/// <summary>The agent book on its own: known, gone and expected agents stay apart as agents come,
/// go, are marked gone and recovery ends.</summary>
public sealed class AgentBookTests
{
    private static AgentEntry Agent(string id, AgentStatus status = AgentStatus.AgentActive) => new(new AgentInfo
    {
        Id = id,
        Hostname = id,
        Resources = { new Resource { Name = "cpus", Scalar = 2 }, new Resource { Name = "mem", Scalar = 1024 } },
    })
    { Status = status };

    [Fact]
    public void A_gone_agent_is_forgotten_refused_and_no_longer_expected()
    {
        var book = new AgentBook();
        book.Add(Agent("a1", AgentStatus.AgentUnreachable));
        book.Expect("a1");
        Assert.True(book.IsExpected("a1"));

        book.MarkGone("a1");

        Assert.False(book.Contains("a1"));
        Assert.True(book.IsGone("a1"));
        Assert.False(book.IsExpected("a1"));
        Assert.Equal(0, book.ExpectedCount);
        var refused = Assert.Throws<InvalidOperationException>(() => book.Add(Agent("a1")));
        Assert.Contains("marked gone", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Only_known_agents_can_be_expected_and_removing_one_stops_expecting_it()
    {
        var book = new AgentBook();
        Assert.Throws<InvalidOperationException>(() => book.Expect("nobody"));
        book.Add(Agent("a1", AgentStatus.AgentUnreachable));
        book.Add(Agent("a2", AgentStatus.AgentUnreachable));
        book.Expect("a1");
        book.Expect("a2");
        book.Expect("a2");
        Assert.Equal(2, book.RecoveredCount);

        Assert.True(book.Remove("a2"));
        Assert.False(book.IsExpected("a2"));
        Assert.Equal(1, book.ExpectedCount);
        Assert.Equal(2, book.RecoveredCount); // counted at load, for the recovery summary
    }

    [Fact]
    public void Ending_recovery_returns_the_expected_agents_without_a_link_and_expects_none()
    {
        var book = new AgentBook();
        var back = Agent("back", AgentStatus.AgentUnreachable);
        var missing = Agent("missing", AgentStatus.AgentUnreachable);
        var arrived = Agent("arrived", AgentStatus.AgentUnreachable);
        foreach (var a in new[] { back, missing, arrived })
        {
            book.Add(a);
            book.Expect(a.Id);
        }
        back.Link = new AgentLinkSession(1);
        back.Status = AgentStatus.AgentActive;
        arrived.Link = new AgentLinkSession(2);
        arrived.Status = AgentStatus.AgentActive;
        book.Arrived("arrived");
        Assert.True(book.SomeAgentUnheard());

        var notBack = book.EndRecovery();

        Assert.Equal(["missing"], notBack.Select(a => a.Id));
        Assert.Equal(0, book.ExpectedCount);
        Assert.True(book.SomeAgentUnheard()); // the missing one is still unreachable
        book.Remove("missing");
        Assert.False(book.SomeAgentUnheard());
    }

    [Fact]
    public void Lost_agents_come_longest_lost_first_without_linked_or_expected_ones()
    {
        var book = new AgentBook();
        var t0 = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var old = Agent("old", AgentStatus.AgentUnreachable);
        old.UnreachableSince = t0;
        var recent = Agent("recent", AgentStatus.AgentUnreachable);
        recent.UnreachableSince = t0.AddMinutes(5);
        var expected = Agent("expected", AgentStatus.AgentUnreachable);
        expected.UnreachableSince = t0.AddMinutes(-5);
        var linked = Agent("linked", AgentStatus.AgentUnreachable);
        linked.UnreachableSince = t0.AddMinutes(-10);
        linked.Link = new AgentLinkSession(1);
        foreach (var a in new[] { recent, old, expected, linked, Agent("active") })
        {
            book.Add(a);
        }
        book.Expect("expected");

        Assert.Equal(["old", "recent"], book.LostLongestFirst().Select(a => a.Id));
        Assert.True(book.SomeAgentUnheard());
    }

    [Fact]
    public void The_active_total_counts_active_and_draining_agents_only()
    {
        var book = new AgentBook();
        book.Add(Agent("active"));
        book.Add(Agent("draining", AgentStatus.AgentDraining));
        book.Add(Agent("unreachable", AgentStatus.AgentUnreachable));

        var total = book.ActiveTotal();

        Assert.Null(total.FindShortfall([new Resource { Name = "cpus", Scalar = 4 }, new Resource { Name = "mem", Scalar = 2048 }]));
        Assert.NotNull(total.FindShortfall([new Resource { Name = "cpus", Scalar = 4.5 }]));
    }

    [Fact]
    public void A_replaced_entry_is_not_current()
    {
        var book = new AgentBook();
        var first = Agent("a1");
        book.Add(first);
        Assert.True(book.IsCurrent(first));
        book.Remove("a1");
        var second = Agent("a1");
        book.Add(second);
        Assert.False(book.IsCurrent(first));
        Assert.True(book.IsCurrent(second));
        Assert.Same(second, book.Find("a1"));
    }
}
