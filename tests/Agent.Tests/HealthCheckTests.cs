using System.Net;
using System.Net.Sockets;
using Sched.V1;
using Xunit;

namespace Scheduler.Agent.Tests;

public class HealthCheckTests
{
    [Fact]
    public async Task Health_changes_are_reported_and_consecutive_failures_kill_the_task()
    {
        await using var h = new AgentHarness(isolation: "none");
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var task = new TaskInfo
        {
            TaskId = "web",
            Container = new ContainerInfo { Type = ContainerInfo.Types.Type.Mock },
            Labels = { ["mock.run_ms"] = "-1" },
            HealthCheck = new HealthCheck
            {
                Type = HealthCheck.Types.Type.Tcp,
                Tcp = new HealthCheck.Types.Tcp { Port = (uint)port },
                IntervalSeconds = 0.1,
                TimeoutSeconds = 1,
                ConsecutiveFailures = 2,
            },
        };
        h.Launch(task);
        var healthy = await h.WaitForAsync("web", s => s.HasHealthy && s.Healthy);
        Assert.Equal(TaskState.TaskRunning, healthy.State);

        listener.Stop();
        var unhealthy = await h.WaitForAsync("web", s => s.HasHealthy && !s.Healthy);
        Assert.Equal(TaskState.TaskRunning, unhealthy.State);
        var end = await h.WaitTerminalAsync("web");
        Assert.Equal((TaskState.TaskFailed, TaskStatus.Types.Reason.TaskHealthCheckFailed), (end.State, end.Reason));
        Assert.Contains("health check", end.Message);
    }

    [Fact]
    public async Task Failures_within_the_grace_period_do_not_count()
    {
        await using var h = new AgentHarness(isolation: "none");
        var task = new TaskInfo
        {
            TaskId = "slow",
            Container = new ContainerInfo { Type = ContainerInfo.Types.Type.Mock },
            Labels = { ["mock.run_ms"] = "1500" },
            HealthCheck = new HealthCheck
            {
                Type = HealthCheck.Types.Type.Command,
                Command = new CommandInfo { Value = "exit 1" },
                IntervalSeconds = 0.1,
                ConsecutiveFailures = 1,
                GracePeriodSeconds = 30,
            },
        };
        h.Launch(task);
        var end = await h.WaitTerminalAsync("slow");
        Assert.Equal(TaskState.TaskFinished, end.State);
        Assert.DoesNotContain(h.Updates("slow"), s => s.HasHealthy);
    }
}
