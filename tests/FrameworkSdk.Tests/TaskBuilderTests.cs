using Sched.V1;
using Xunit;

namespace Scheduler.FrameworkSdk.Tests;

public sealed class TaskBuilderTests
{
    [Fact]
    public void Builds_a_full_task_description()
    {
        var task = new TaskBuilder("svc-1")
            .Name("web")
            .Argv("/usr/bin/python3", "-m", "http.server")
            .Env("PORT", "8080")
            .Cpus(0.25).Mem(64).Disk(10)
            .KillGrace(TimeSpan.FromSeconds(7))
            .HealthCheckHttp(8080, "/health", TimeSpan.FromSeconds(2))
            .Label("team", "infra")
            .Build();
        Assert.Equal(("svc-1", "web"), (task.TaskId, task.Name));
        Assert.False(task.Command.Shell);
        Assert.Equal(["/usr/bin/python3", "-m", "http.server"], task.Command.Arguments);
        Assert.Equal("8080", task.Command.Env["PORT"]);
        Assert.Equal(7, task.KillPolicy.GracePeriodSeconds);
        Assert.Equal(HealthCheck.Types.Type.Http, task.HealthCheck.Type);
        Assert.Equal("infra", task.Labels["team"]);
        Assert.Equal(ContainerInfo.Types.Type.Process, task.Container.Type);
        Assert.Equal(0.25, OfferResources.Scalar(task.Resources, "cpus"));
        Assert.Equal(10, OfferResources.Scalar(task.Resources, "disk"));
    }

    [Fact]
    public void Mock_and_image_set_the_container()
    {
        var mock = new TaskBuilder("m").Mock(TimeSpan.FromMilliseconds(250), exitCode: 3, ignoreSigterm: true).Cpus(0.1).Build();
        Assert.Equal(ContainerInfo.Types.Type.Mock, mock.Container.Type);
        Assert.Equal("250", mock.Labels["mock.run_ms"]);
        Assert.Equal("3", mock.Labels["mock.exit_code"]);
        Assert.Equal("true", mock.Labels["mock.ignore_sigterm"]);
        Assert.Equal("-1", new TaskBuilder("forever").Mock().Build().Labels["mock.run_ms"]);

        var oci = new TaskBuilder("c").Shell("echo hi").Image("oci:/images/busybox:latest").Build();
        Assert.Equal(ContainerInfo.Types.Type.Oci, oci.Container.Type);
        Assert.Equal("oci:/images/busybox:latest", oci.Container.Oci.Image);
    }

    [Fact]
    public void A_task_without_a_command_is_refused_with_a_clear_message()
    {
        var e = Assert.Throws<InvalidOperationException>(() => new TaskBuilder("t").Cpus(1).Build());
        Assert.Contains("no command", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => new TaskBuilder("t").Cpus(-1));
        Assert.Throws<ArgumentException>(() => new TaskBuilder(" "));
    }

    [Fact]
    public void Terminal_states_are_the_final_ones()
    {
        Assert.True(TaskState.TaskFinished.IsTerminal());
        Assert.True(TaskState.TaskGoneByOperator.IsTerminal());
        Assert.False(TaskState.TaskUnreachable.IsTerminal());
        Assert.False(TaskState.TaskRunning.IsTerminal());
        Assert.True(TaskState.TaskKilling.IsActive());
        Assert.Equal("failed", TaskState.TaskFailed.ShortName());
    }
}
