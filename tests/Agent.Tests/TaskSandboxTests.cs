using Sched.V1;
using Scheduler.Agent.Native;
using Xunit;

namespace Scheduler.Agent.Tests;

public class TaskSandboxTests
{
    [Theory]
    [InlineData("../../..")]
    [InlineData("/etc")]
    [InlineData("data/../../other")]
    public async Task A_working_dir_outside_the_sandbox_is_a_task_error(string workingDir)
    {
        await using var h = new AgentHarness();
        var task = AgentHarness.ShellTask("wd", "pwd");
        task.Command.WorkingDir = workingDir;
        h.Launch(task);
        var end = await h.WaitTerminalAsync("wd");
        Assert.Equal((TaskState.TaskError, TaskStatus.Types.Reason.TaskInvalid), (end.State, end.Reason));
        Assert.Contains("outside the task's sandbox", end.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_working_dir_through_a_link_out_of_the_sandbox_is_a_task_error()
    {
        await using var h = new AgentHarness();
        var task = AgentHarness.ShellTask("wdlink", "pwd");
        task.Command.Uris.Add(new Sched.V1.Uri { Value = "file://" + MakeArchiveWithLink(h.FetchDir), Extract = true });
        task.Command.WorkingDir = "out";
        h.Launch(task);
        var end = await h.WaitTerminalAsync("wdlink");
        Assert.True(end.State == TaskState.TaskError, end.Message);
        Assert.Contains("outside the task's sandbox", end.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_working_dir_inside_the_sandbox_is_used()
    {
        await using var h = new AgentHarness();
        var task = AgentHarness.ShellTask("wdin", "mkdir -p data && cd data && pwd");
        h.Launch(task);
        Assert.Equal(TaskState.TaskFinished, (await h.WaitTerminalAsync("wdin")).State);
        var second = AgentHarness.ShellTask("wdin2", "pwd");
        second.Command.WorkingDir = "./";
        h.Launch(second);
        var end = await h.WaitTerminalAsync("wdin2");
        Assert.True(end.State == TaskState.TaskFinished, end.Message);
    }

    [NeedsFact(Needs.Root)]
    public async Task The_sandbox_belongs_to_the_tasks_user_who_can_write_in_it_and_others_cannot_read_it()
    {
        var nobody = Libc.User("nobody") ?? throw new InvalidOperationException("this host has no user 'nobody'");
        await using var h = new AgentHarness();
        var task = AgentHarness.ShellTask("mine", "id -u && touch mine && echo written > mine && echo err >&2");
        task.Command.User = "nobody";
        h.Launch(task);
        var end = await h.WaitTerminalAsync("mine");
        var sandbox = Path.Combine(h.WorkDir, "sandboxes", "fw1", "mine");
        Assert.True(end.State == TaskState.TaskFinished, $"{end.State}: {end.Message}; stderr: {await File.ReadAllTextAsync(Path.Combine(sandbox, "stderr"))}");
        Assert.Equal($"{nobody.Uid}\n", await File.ReadAllTextAsync(Path.Combine(sandbox, "stdout")));
        foreach (var path in new[] { sandbox, Path.Combine(sandbox, "stdout"), Path.Combine(sandbox, "stderr"), Path.Combine(sandbox, "mine") })
        {
            Assert.Equal(nobody.Uid, OwnerOf(path));
        }
        Assert.Equal((UnixFileMode)Convert.ToInt32("750", 8), OperatingSystem.IsWindows() ? default : File.GetUnixFileMode(sandbox));
    }

    private static uint OwnerOf(string path)
    {
        var stat = new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%u", path]) { RedirectStandardOutput = true };
        using var p = System.Diagnostics.Process.Start(stat)!;
        var text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return uint.Parse(text.Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>A tar with <c>out -> /etc</c> (a link the unpacker keeps, pointing outside).</summary>
    private static string MakeArchiveWithLink(string dir)
    {
        var path = Path.Combine(dir, "link.tar");
        using var file = File.Create(path);
        using var tar = new System.Formats.Tar.TarWriter(file);
        tar.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.SymbolicLink, "out") { LinkName = "/etc" });
        return path;
    }
}
