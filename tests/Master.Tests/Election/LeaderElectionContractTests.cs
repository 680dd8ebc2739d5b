using Sched.V1;
using Scheduler.Master.Election;
using Xunit;

namespace Scheduler.Master.Tests.Election;

/// <summary>
/// What the master daemon relies on from every <see cref="ILeaderElection"/>: a lone candidate
/// leads, sees itself as the leader and holds a fence exactly when the election is replicated;
/// resigning or disposing ends the term at once and takes the fence away. One subclass per
/// election supplies the candidate.
/// </summary>
public abstract class LeaderElectionContractTests : IAsyncLifetime
{
    private readonly List<ILeaderElection> _created = [];

    /// <summary>A new election for <paramref name="self"/>, the only candidate of its namespace.</summary>
    protected abstract ILeaderElection NewElection(MasterInfo self);

    /// <summary>Whether the election under test lets other masters lead in turn.</summary>
    protected abstract bool ExpectReplicated { get; }

    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual async Task DisposeAsync()
    {
        foreach (var e in _created)
        {
            await e.DisposeAsync();
        }
    }

    private ILeaderElection Candidate(string id = "m1")
    {
        var election = NewElection(new MasterInfo { Id = id, Address = "127.0.0.1:7101" });
        _created.Add(election);
        return election;
    }

    private static CancellationToken Within(int seconds = 30) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    private static async Task LostAsync(Leadership leadership)
    {
        var lost = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = leadership.Lost.Register(() => lost.TrySetResult());
        await lost.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void It_tells_whether_other_masters_may_lead() => Assert.Equal(ExpectReplicated, Candidate().Replicated);

    [Fact]
    public async Task A_lone_candidate_leads_and_sees_itself_as_the_leader()
    {
        var election = Candidate();
        var changed = new TaskCompletionSource<MasterInfo?>(TaskCreationOptions.RunContinuationsAsynchronously);
        election.LeaderChanged += m =>
        {
            if (m?.Id == "m1")
            {
                changed.TrySetResult(m);
            }
        };
        var leadership = await election.CampaignAsync(Within());
        Assert.Equal("m1", leadership.Leader.Id);
        Assert.Equal(leadership.Term, leadership.Leader.Term);
        Assert.False(leadership.Lost.IsCancellationRequested);
        Assert.True(election.HoldsLeadership);
        Assert.Equal("m1", (await changed.Task.WaitAsync(TimeSpan.FromSeconds(10)))?.Id);
        Assert.Equal("m1", election.CurrentLeader?.Id);
    }

    [Fact]
    public async Task The_leader_holds_a_fence_of_its_term_exactly_when_the_election_is_replicated()
    {
        var election = Candidate();
        Assert.Null(election.Fence);
        var leadership = await election.CampaignAsync(Within());
        if (ExpectReplicated)
        {
            var fence = Assert.IsType<Scheduler.Master.Registry.RegistryFence>(election.Fence);
            Assert.Equal((long)leadership.Term, fence.Term);
            Assert.False(fence.Lost.IsCancellationRequested);
        }
        else
        {
            Assert.Null(election.Fence);
        }
    }

    [Fact]
    public async Task Resigning_ends_the_term_at_once_and_takes_the_fence_away()
    {
        var election = Candidate();
        var leadership = await election.CampaignAsync(Within());
        await election.ResignAsync(Within());
        await LostAsync(leadership);
        Assert.False(election.HoldsLeadership);
        Assert.Null(election.Fence);
    }

    [Fact]
    public async Task Disposing_ends_the_term()
    {
        var election = NewElection(new MasterInfo { Id = "m1", Address = "127.0.0.1:7101" });
        var leadership = await election.CampaignAsync(Within());
        await election.DisposeAsync();
        await LostAsync(leadership);
        Assert.False(election.HoldsLeadership);
    }

    [Fact]
    public async Task A_campaign_cancelled_before_it_starts_does_not_lead()
    {
        var election = Candidate();
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => election.CampaignAsync(cancelled.Token));
        Assert.False(election.HoldsLeadership);
    }
}
