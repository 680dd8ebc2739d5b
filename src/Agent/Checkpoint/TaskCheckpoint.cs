using System.Text.Json.Serialization;
using Google.Protobuf;
using Sched.V1;
using Scheduler.Agent.Execution;
using Scheduler.Agent.Supervision;

namespace Scheduler.Agent.Checkpoint;

/// <summary>What the agent remembers of one task across restarts (<c>meta/tasks/CONTAINER.json</c>).</summary>
public sealed class TaskCheckpoint
{
    public string FrameworkInfo { get; set; } = "";

    public string TaskInfo { get; set; } = "";

    public TaskHandle Handle { get; set; } = new();

    /// <summary>The task has ended (its terminal update is queued); nothing to re-adopt.</summary>
    public bool Ended { get; set; }

    /// <summary>A kill was requested with this reason (so a restarted agent reports KILLED).</summary>
    public int? KillReason { get; set; }

    public static TaskCheckpoint From(Sched.V1.FrameworkInfo framework, Sched.V1.TaskInfo task, TaskHandle handle)
        => new() { FrameworkInfo = framework.ToByteString().ToBase64(), TaskInfo = task.ToByteString().ToBase64(), Handle = handle };

    public Sched.V1.FrameworkInfo Framework() => Sched.V1.FrameworkInfo.Parser.ParseFrom(ByteString.FromBase64(FrameworkInfo));

    public Sched.V1.TaskInfo Task() => Sched.V1.TaskInfo.Parser.ParseFrom(ByteString.FromBase64(TaskInfo));
}

[JsonSerializable(typeof(TaskCheckpoint))]
internal sealed partial class CheckpointJson : JsonSerializerContext
{
}

/// <summary>The agent's checkpoint directory: agent id, boot id, tasks.</summary>
public sealed class AgentCheckpointStore
{
    private readonly string _meta;

    public AgentCheckpointStore(string workDir)
    {
        _meta = Path.Combine(workDir, "meta");
        Directory.CreateDirectory(Path.Combine(_meta, "tasks"));
    }

    public string MetaDir => _meta;

    /// <summary>The agent id assigned by the master, or "" before the first registration.</summary>
    public string AgentId
    {
        get => File.Exists(Path.Combine(_meta, "agent.id")) ? File.ReadAllText(Path.Combine(_meta, "agent.id")).Trim() : "";
        set => AtomicFile.Write(Path.Combine(_meta, "agent.id"), System.Text.Encoding.UTF8.GetBytes(value));
    }

    /// <summary>The boot id recorded when the agent last started ("" the first time).</summary>
    public string BootId
    {
        get => File.Exists(Path.Combine(_meta, "boot.id")) ? File.ReadAllText(Path.Combine(_meta, "boot.id")).Trim() : "";
        set => AtomicFile.Write(Path.Combine(_meta, "boot.id"), System.Text.Encoding.UTF8.GetBytes(value));
    }

    public void Save(TaskCheckpoint checkpoint)
        => AtomicFile.WriteJson(PathOf(checkpoint.Handle.ContainerId), checkpoint, CheckpointJson.Default.TaskCheckpoint);

    public void Delete(string containerId) => File.Delete(PathOf(containerId));

    public List<TaskCheckpoint> LoadAll()
    {
        var list = new List<TaskCheckpoint>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(_meta, "tasks"), "*.json"))
        {
            if (AtomicFile.ReadJson(file, CheckpointJson.Default.TaskCheckpoint) is { } c)
            {
                list.Add(c);
            }
        }
        return list;
    }

    private string PathOf(string containerId) => Path.Combine(_meta, "tasks", containerId + ".json");
}
