using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Xunit;

namespace Scheduler.Master.Tests.Direct;

/// <summary>A raised quota limit reaches the next offers through the master (a held-back notebook
/// server must start once its user's limit is raised).</summary>
public sealed class QuotaRaiseTests
{
    [Theory]
    [InlineData("web")]
    [InlineData("notebooks/carol")]
    public async Task A_raised_limit_is_offered_after_a_decline(string role)
    {
        await using var master = await DirectMaster.StartAsync();
        var agent = new DirectAgent(master, Res.Of(4, 1024));
        Assert.NotNull(await agent.RegisterAsync());
        await SetLimitAsync(master, role, 0.25);
        var fw = DirectFramework.For(master, role: role);
        await fw.SubscribeAsync();
        await master.AllocateAsync();
        fw.Drain();
        Assert.Equal(0.25, OfferedCpus(fw), 6);

        await fw.DeclineAsync(fw.Offers.Keys.ToList(), 0);
        fw.Offers.Clear();
        await SetLimitAsync(master, role, 1);
        await master.AllocateAsync();
        fw.Drain();
        Assert.Equal(1, OfferedCpus(fw), 6);
    }

    private static async Task SetLimitAsync(DirectMaster master, string role, double cpus)
    {
        var request = new UpdateQuotaRequest { Quotas = { new QuotaInfo { Role = role, Limits = { new Resource { Name = "cpus", Scalar = cpus } } } } };
        await await master.On(l => l.UpdateQuota(request));
    }

    private static double OfferedCpus(DirectFramework fw) =>
        fw.Offers.Values.SelectMany(o => o.Resources).Where(r => r.Name == "cpus").Sum(r => r.Scalar);
}
