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

    [NeedsFact(Needs.Busybox)]
    public async Task An_http_server_task_is_healthy_then_failing_checks_kill_it()
    {
        await using var h = new AgentHarness();
        var port = FreePort();
        var task = AgentHarness.ShellTask("httpd", $"mkdir -p www && echo ok > www/ok && exec /bin/busybox httpd -f -p 127.0.0.1:{port} -h www");
        task.HealthCheck = new HealthCheck
        {
            Type = HealthCheck.Types.Type.Http,
            Http = new HealthCheck.Types.Http { Port = (uint)port, Path = "/ok" },
            IntervalSeconds = 0.2,
            TimeoutSeconds = 2,
            ConsecutiveFailures = 2,
            GracePeriodSeconds = 10,
        };
        h.Launch(task);
        var healthy = await h.WaitForAsync("httpd", s => s.HasHealthy && s.Healthy);
        Assert.Equal(TaskState.TaskRunning, healthy.State);
        var pid = h.Core.Tasks.Single(t => t.Info.TaskId == "httpd").Handle!.TaskPid;

        // The server now answers 404 for the checked path.
        File.Delete(Path.Combine(h.WorkDir, "sandboxes", "fw1", "httpd", "www", "ok"));
        var unhealthy = await h.WaitForAsync("httpd", s => s.HasHealthy && !s.Healthy);
        Assert.Equal(TaskState.TaskRunning, unhealthy.State);
        var end = await h.WaitTerminalAsync("httpd");
        Assert.Equal((TaskState.TaskFailed, TaskStatus.Types.Reason.TaskHealthCheckFailed), (end.State, end.Reason));
        Assert.Contains("health check", end.Message);
        Assert.False(Native.ProcFs.Stat(pid) is { Alive: true }, "the server survived its failed health check");
        ProcessExecutorTests.AssertNoCgroups(h);
    }

    private static int FreePort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
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
