using Sched.V1;
using Scheduler.Master.Election;
using Xunit;

namespace Scheduler.Master.Tests.Election;

public sealed class StandaloneElectionTests
{
    private static MasterInfo Self => new() { Id = "m1", Address = "127.0.0.1:5050", Term = 7 };

    [Fact]
    public async Task The_only_master_leads_at_once_in_term_zero()
    {
        await using var election = new StandaloneElection(Self);
        Assert.Null(election.CurrentLeader);
        MasterInfo? observed = null;
        election.LeaderChanged += m => observed = m;
        var leadership = await election.CampaignAsync(CancellationToken.None);
        Assert.Equal(0UL, leadership.Term);
        Assert.Equal("m1", leadership.Leader.Id);
        Assert.Equal(0UL, leadership.Leader.Term);
        Assert.False(leadership.Lost.IsCancellationRequested);
        Assert.Equal("127.0.0.1:5050", election.CurrentLeader?.Address);
        Assert.Equal("m1", observed?.Id);
    }

    [Fact]
    public async Task Leadership_is_lost_only_on_resign_or_dispose()
    {
        var election = new StandaloneElection(Self);
        var leadership = await election.CampaignAsync(CancellationToken.None);
        var lost = new TaskCompletionSource();
        leadership.Lost.Register(() => lost.TrySetResult());
        Assert.False(lost.Task.IsCompleted);
        await election.ResignAsync(CancellationToken.None);
        await lost.Task.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Null(election.CurrentLeader);
        await Assert.ThrowsAsync<InvalidOperationException>(() => election.CampaignAsync(CancellationToken.None));
        await election.DisposeAsync();
    }

    [Fact]
    public async Task Dispose_ends_leadership()
    {
        var election = new StandaloneElection(Self);
        var leadership = await election.CampaignAsync(CancellationToken.None);
        var lost = new TaskCompletionSource();
        leadership.Lost.Register(() => lost.TrySetResult());
        MasterInfo? last = Self;
        election.LeaderChanged += m => last = m;
        await election.DisposeAsync();
        await lost.Task.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Null(last);
    }
}
