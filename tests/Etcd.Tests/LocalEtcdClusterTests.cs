using Xunit;

namespace Scheduler.Etcd.Tests;

public sealed class LocalEtcdClusterTests
{
    [Fact]
    public async Task Starts_healthy_members_and_cleans_up()
    {
        string directory;
        int[] pids;
        await using (var cluster = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 3 }))
        {
            directory = cluster.Directory;
            Assert.Equal(3, cluster.Endpoints.Distinct().Count());
            for (var i = 0; i < 3; i++)
            {
                Assert.True(await cluster.IsHealthyAsync(i));
            }
            pids = Enumerable.Range(0, 3).Select(i => cluster.ProcessId(i)!.Value).ToArray();
        }
        Assert.False(Directory.Exists(directory));
        foreach (var pid in pids)
        {
            Assert.False(Directory.Exists($"/proc/{pid}") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z "), $"etcd pid {pid} still runs");
        }
    }

    [Fact]
    public async Task Members_can_be_killed_restarted_paused_and_resumed()
    {
        await using var cluster = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 3 });
        await cluster.KillAsync(1);
        Assert.False(cluster.IsRunning(1));
        Assert.False(await cluster.IsHealthyAsync(1));
        // If the killed member led, the others elect a new leader first.
        await cluster.WaitHealthyAsync(0, TestKeys.Timeout());
        await cluster.RestartAsync(1, TestKeys.Timeout());
        Assert.True(await cluster.IsHealthyAsync(1));

        cluster.Pause(2);
        // A stopped process answers nothing: the health probe times out.
        Assert.False(await cluster.IsHealthyAsync(2));
        Assert.True(cluster.IsRunning(2));
        cluster.Resume(2);
        await cluster.WaitHealthyAsync(2, TestKeys.Timeout());
    }

    [Fact]
    public void The_binary_is_found()
    {
        Assert.True(File.Exists(LocalEtcdCluster.FindBinary()));
    }
}
