using FsCheck;
using FsCheck.Fluent;
using Scheduler.Protocol.Masters;
using Xunit;

namespace Scheduler.Protocol.Tests.Masters;

public class MasterRotationTests
{
    [Fact]
    public void Starts_with_the_first_configured_master_after_trimming_and_dropping_blanks_and_duplicates()
    {
        var r = new MasterRotation([" m1 ", "", "m2", "m1", "  ", "m3"]);
        Assert.Equal(["m1", "m2", "m3"], r.Configured);
        Assert.Equal("m1", r.Current);
    }

    [Fact]
    public void No_master_address_is_a_clear_error()
    {
        var e = Assert.Throws<ArgumentException>(() => new MasterRotation([" ", ""]));
        Assert.Contains("host:port", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new MasterRotation([]));
    }

    [Fact]
    public void A_hint_naming_another_master_is_followed_without_moving_the_cycle()
    {
        var r = new MasterRotation(["m1", "m2", "m3"]);
        Assert.True(r.Redirected("m1", " m3 "));
        Assert.Equal("m3", r.Current);
        // The leader m3 is not in the cycle's place: when it fails, the cycle goes on from m1.
        r.Failed("m3");
        Assert.Equal("m2", r.Current);
    }

    [Fact]
    public void A_leader_outside_the_configured_list_is_followed()
    {
        var r = new MasterRotation(["m1", "m2"]);
        Assert.True(r.Redirected("m1", "m9"));
        Assert.Equal("m9", r.Current);
    }

    [Fact]
    public void A_hint_naming_the_master_that_just_failed_is_not_followed()
    {
        var r = new MasterRotation(["m1", "m2", "m3"]);
        r.Failed("m1");                              // the leader m1 died
        Assert.Equal("m2", r.Current);
        Assert.Equal("m1", r.LastFailed);
        Assert.False(r.Redirected("m2", "m1"));      // m2 still names the dead leader
        Assert.Equal("m3", r.Current);               // not m1 again
        Assert.True(r.Redirected("m3", "m2"));       // a new leader is known
        Assert.Equal("m2", r.Current);
    }

    [Fact]
    public void Once_connected_the_master_that_failed_before_may_be_followed_again()
    {
        var r = new MasterRotation(["m1", "m2"]);
        r.Failed("m1");
        r.Connected();
        Assert.Null(r.LastFailed);
        Assert.True(r.Redirected("m2", "m1"));
        Assert.Equal("m1", r.Current);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("  ")]
    [InlineData("m2")]
    public void An_empty_hint_or_one_naming_the_answering_master_moves_to_the_next(string? hint)
    {
        var r = new MasterRotation(["m1", "m2", "m3"]);
        Assert.True(r.Redirected("m1", "m2"));
        Assert.False(r.Redirected("m2", hint));
        Assert.Equal("m2", r.Current);               // the cycle was at m1: next is m2
        Assert.False(r.Redirected("m2", hint));
        Assert.Equal("m3", r.Current);
    }

    [Fact]
    public void Failures_cycle_through_the_list_and_wrap_around()
    {
        var r = new MasterRotation(["m1", "m2", "m3"]);
        var seen = new List<string>();
        for (var i = 0; i < 7; i++)
        {
            seen.Add(r.Current);
            r.Failed(r.Current);
        }
        Assert.Equal(["m1", "m2", "m3", "m1", "m2", "m3", "m1"], seen);
    }

    [Fact]
    public void A_round_is_exhausted_after_as_many_consecutive_failures_as_masters()
    {
        var r = new MasterRotation(["m1", "m2", "m3"]);
        Assert.False(r.Failed(r.Current));
        Assert.False(r.Failed(r.Current));
        Assert.True(r.Failed(r.Current));            // every master failed once
        Assert.Equal(0, r.FailuresInRound);
        Assert.False(r.Failed(r.Current));           // a new round begins
        Assert.Equal(1, r.FailuresInRound);
    }

    [Fact]
    public void A_live_answer_or_a_connection_starts_a_new_round()
    {
        var r = new MasterRotation(["m1", "m2", "m3"]);
        r.Failed(r.Current);
        r.Failed(r.Current);
        r.Redirected(r.Current, "");                 // a follower answered: an election is under way
        Assert.Equal(0, r.FailuresInRound);
        Assert.False(r.Failed(r.Current));
        Assert.False(r.Failed(r.Current));
        r.Connected();
        Assert.False(r.Failed(r.Current));
        Assert.False(r.Failed(r.Current));
        Assert.True(r.Failed(r.Current));
    }

    [Fact]
    public void A_learned_leader_is_used_until_the_next_move_and_blanks_are_ignored()
    {
        var r = new MasterRotation(["m1", "m2", "m3"]);
        r.Learned(" m3 ");
        Assert.Equal("m3", r.Current);
        r.Learned("  ");
        r.Learned(null);
        Assert.Equal("m3", r.Current);
        Assert.False(r.Redirected("m3", "m3"));      // names itself: move on from the cycle's m1
        Assert.Equal("m2", r.Current);
    }

    [Fact]
    public void Failures_alone_visit_every_master_once_per_round_and_exhaust_exactly_at_its_end()
    {
        var lists = Gen.Choose(1, 6).Select(n => Enumerable.Range(1, n).Select(i => "m" + i).ToArray());
        Prop.ForAll(lists.ToArbitrary(), masters =>
        {
            var r = new MasterRotation(masters);
            for (var round = 0; round < 3; round++)
            {
                var visited = new List<string>();
                for (var i = 0; i < masters.Length; i++)
                {
                    visited.Add(r.Current);
                    Assert.Equal(i == masters.Length - 1, r.Failed(r.Current));
                }
                Assert.Equal(masters, visited);
            }
        }).QuickCheckThrowOnFailure();
    }

    /// <summary>Random sequences of answers against a model: a failure exhausts a round exactly when
    /// it is the n-th, 2n-th… failure since the last live answer or connection; a hint is followed
    /// exactly when it is not blank, not the answering master and not the last failed one.</summary>
    [Fact]
    public void Rounds_and_hints_agree_with_the_model_over_random_sequences()
    {
        // 0: the current master fails; 1: it answers with a hint; 2: a session is established.
        var steps = Gen.Choose(0, 2).Zip(Gen.Elements("", "m1", "m2", "m3", "m9")).ListOf();
        Prop.ForAll(Gen.Choose(1, 3).ToArbitrary(), steps.ToArbitrary(), (n, ops) =>
        {
            var masters = Enumerable.Range(1, n).Select(i => "m" + i).ToArray();
            var r = new MasterRotation(masters);
            var failures = 0;
            string? lastFailed = null;
            foreach (var (kind, hint) in ops)
            {
                var current = r.Current;
                switch (kind)
                {
                    case 0:
                        failures++;
                        lastFailed = current;
                        Assert.Equal(failures % n == 0, r.Failed(current));
                        break;
                    case 1:
                        failures = 0;
                        var follow = hint.Length > 0 && hint != current && hint != lastFailed;
                        Assert.Equal(follow, r.Redirected(current, hint));
                        if (follow)
                        {
                            Assert.Equal(hint, r.Current);
                        }
                        break;
                    default:
                        failures = 0;
                        lastFailed = null;
                        r.Connected();
                        break;
                }
                Assert.Equal(failures % n, r.FailuresInRound);
                Assert.Equal(lastFailed, r.LastFailed);
            }
        }).QuickCheckThrowOnFailure();
    }
}
