using Sched.V1;
using Scheduler.Master.State;
using Xunit;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Tests;

/// <summary>The compact per-task record: what goes in comes back out, and the caller's objects are left as they were.</summary>
public sealed class TaskEntryTests
{
    private static TaskInfo Info() => new()
    {
        TaskId = "web-1",
        Name = "web",
        AgentId = "agent-7",
        Resources = { new Resource { Name = "cpus", Scalar = 0.5, AllocationRole = "eng" } },
        Command = new CommandInfo { Value = "sleep 1" },
        Labels = { ["team"] = "a" },
        KillPolicy = new KillPolicy { GracePeriodSeconds = 7 },
    };

    [Fact]
    public void Launched_task_gives_back_its_info_and_leaves_the_request_unchanged()
    {
        var info = Info();
        var before = info.Clone();
        var entry = TaskEntry.Launched(info, "fw-1", "agent-7", "eng", [.. info.Resources], TaskState.TaskStaging);
        Assert.Equal(before, info);
        Assert.Equal(before, entry.Info());
        Assert.Equal(7, entry.KillPolicy!.GracePeriodSeconds);
        Assert.False(entry.HasStatus);

        var record = entry.ToRecord();
        Assert.Equal(("web-1", "web", "fw-1", "agent-7", "eng"), (record.TaskId, record.Name, record.FrameworkId, record.AgentId, record.Role));
        Assert.Equal("a", record.Labels["team"]);
        Assert.Equal(TaskState.TaskStaging, record.Status.State);
        Assert.Equal(TaskStatus.Types.Source.Master, record.Status.Source);
    }

    [Theory]
    [InlineData("0f8fad5b-d9cb-469f-a165-70867728950e")] // kept as 16 bytes
    [InlineData("0F8FAD5B-D9CB-469F-A165-70867728950E")] // not canonical: kept as text
    [InlineData("update-42")]
    [InlineData("")]
    public void Status_round_trips_with_its_uuid_and_ids(string uuid)
    {
        var info = Info();
        var entry = TaskEntry.Launched(info, "fw-1", "agent-7", "eng", [.. info.Resources], TaskState.TaskStaging);
        var status = new TaskStatus
        {
            TaskId = "web-1", AgentId = "agent-7", FrameworkId = "fw-1", State = TaskState.TaskRunning, Uuid = uuid,
            Source = TaskStatus.Types.Source.Executor, Message = "up", Timestamp = 1234.5, Healthy = true,
        };
        var sent = status.Clone();
        entry.StatusAcknowledged = true;
        entry.SetStatus(status);
        Assert.Equal(sent, status);
        Assert.Equal(sent, entry.Status());
        Assert.False(entry.StatusAcknowledged);
        Assert.False(entry.StatusFromMaster);
        Assert.Equal(uuid, entry.StatusUuid);
        Assert.Equal(uuid.Length > 0, entry.StatusUuidIs(uuid));
        Assert.False(entry.StatusUuidIs("0f8fad5b-d9cb-469f-a165-70867728950f"));
        Assert.False(entry.StatusUuidIs(""));
        Assert.Equal(sent, entry.ToRecord().Status);
    }
}
