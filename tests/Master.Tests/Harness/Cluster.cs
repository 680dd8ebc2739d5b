using Sched.V1;

namespace Scheduler.Master.Tests.Harness;

/// <summary>A master, test agents and test frameworks, disposed together.</summary>
public sealed class Cluster : IAsyncDisposable
{
    private readonly List<IAsyncDisposable> _parts = [];

    private Cluster(MasterFixture master)
    {
        Master = master;
    }

    public MasterFixture Master { get; }

    public static async Task<Cluster> StartAsync(Action<MasterOptions>? configure = null) => new(await MasterFixture.StartAsync(configure));

    /// <summary>A cluster whose master uses <paramref name="workDir"/> (kept after disposal).</summary>
    public static async Task<Cluster> StartOnAsync(string workDir, Action<MasterOptions>? configure = null) => new(await MasterFixture.StartAsync(configure, workDir));

    public async Task<TestAgentLink> AddAgentAsync(double cpus = 4, double mem = 4096, string hostname = "test-host", TimeSpan? resendInterval = null)
    {
        var agent = new TestAgentLink(Master.Channel, Res.Of(cpus, mem), hostname);
        if (resendInterval is { } interval)
        {
            agent.ResendInterval = interval;
        }
        _parts.Add(agent);
        await agent.ConnectAsync();
        return agent;
    }

    public async Task<TestFramework> AddFrameworkAsync(FrameworkInfo? info = null)
    {
        var fw = new TestFramework(Master.Channel, info ?? TestFramework.DefaultInfo());
        _parts.Add(fw);
        await fw.SubscribeAsync();
        return fw;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var part in _parts)
        {
            await part.DisposeAsync();
        }
        await Master.DisposeAsync();
    }
}
