using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Sched.V1;

namespace Scheduler.Agent.Volumes;

/// <summary>
/// The agent's persistent volumes and checkpointed resources. A volume (disk with
/// <c>persistence.id</c>, made by a CREATE operation) is the directory
/// <c>WORK_DIR/volumes/ROLE/ID</c>: it outlives the tasks that use it and agent restarts, and is
/// removed only by DESTROY. A task whose resources include a volume sees it at
/// <c>SANDBOX/container_path</c> (a symlink for process tasks; an OCI container gets a bind mount
/// of <see cref="HostPath"/> at the same path, see <see cref="Attach"/>).
/// The list of checkpointed resources (dynamic reservations and volumes) the master last sent is
/// kept in <c>meta/resources.pb</c>, so the agent's own state shows it.
/// </summary>
public sealed class PersistentVolumes
{
    private readonly string _file;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private List<Resource> _checkpointed = [];

    /// <param name="workDir">The agent's work dir (absolute).</param>
    /// <param name="metaDir">The agent's checkpoint directory.</param>
    public PersistentVolumes(string workDir, string metaDir, ILogger logger)
    {
        Root = Path.Combine(workDir, "volumes");
        _file = Path.Combine(metaDir, "resources.pb");
        _log = logger;
        if (File.Exists(_file))
        {
            try
            {
                _checkpointed = [.. MasterMessage.Types.ApplyOperations.Parser.ParseFrom(File.ReadAllBytes(_file)).CheckpointedResources];
            }
            catch (InvalidProtocolBufferException e)
            {
                _log.LogWarning("ignoring unreadable {File} ({Message}); the master re-sends the list at registration", _file, e.Message);
            }
        }
    }

    /// <summary><c>WORK_DIR/volumes</c>.</summary>
    public string Root { get; }

    /// <summary>Dynamic reservations and persistent volumes of this agent, as the master last told.</summary>
    public IReadOnlyList<Resource> Checkpointed
    {
        get
        {
            lock (_gate)
            {
                return [.. _checkpointed];
            }
        }
    }

    /// <summary>The directory of a volume: <c>volumes/ROLE/ID</c>. Throws <see cref="ArgumentException"/>
    /// when the resource is not a volume or its role or id cannot name a directory safely.</summary>
    public string HostPath(Resource volume)
    {
        ArgumentNullException.ThrowIfNull(volume);
        var id = volume.Disk?.Persistence?.Id ?? "";
        var role = volume.Reservation?.Role ?? "";
        if (!IsSafeSegment(id))
        {
            throw new ArgumentException($"volume id '{id}' cannot name a directory (empty, '.', '..', or contains '/')");
        }
        var segments = role.Split('/');
        if (role.Length == 0 || !segments.All(IsSafeSegment))
        {
            throw new ArgumentException($"volume '{id}' has role '{role}', which cannot name a directory; volumes need reserved disk");
        }
        return Path.Combine([Root, .. segments, id]);
    }

    /// <summary>Records the full list sent at registration and makes sure every volume's directory exists.</summary>
    public void Sync(IEnumerable<Resource> checkpointed)
    {
        var list = checkpointed.ToList();
        foreach (var v in list.Where(IsVolume))
        {
            Guard(v, "prepare", () => Directory.CreateDirectory(HostPath(v)));
        }
        Save(list);
    }

    /// <summary>Applies RESERVE/UNRESERVE/CREATE/DESTROY from the master: CREATE makes the volume's
    /// directory, DESTROY deletes it with its contents; then the list is stored.</summary>
    public void Apply(MasterMessage.Types.ApplyOperations message)
    {
        ArgumentNullException.ThrowIfNull(message);
        foreach (var op in message.Operations)
        {
            switch (op.OperationCase)
            {
                case Operation.OperationOneofCase.Create:
                    foreach (var v in op.Create.Volumes.Where(IsVolume))
                    {
                        Guard(v, "create", () =>
                        {
                            var path = HostPath(v);
                            Directory.CreateDirectory(path);
                            _log.LogInformation("created persistent volume {Volume} at {Path}", v.Disk.Persistence.Id, path);
                        });
                    }
                    break;
                case Operation.OperationOneofCase.Destroy:
                    foreach (var v in op.Destroy.Volumes.Where(IsVolume))
                    {
                        Guard(v, "destroy", () =>
                        {
                            var path = HostPath(v);
                            if (Directory.Exists(path))
                            {
                                Directory.Delete(path, recursive: true);
                            }
                            _log.LogInformation("destroyed persistent volume {Volume} ({Path})", v.Disk.Persistence.Id, path);
                        });
                    }
                    break;
                default:
                    break;
            }
        }
        Save([.. message.CheckpointedResources]);
    }

    /// <summary>
    /// Makes the task's volumes visible in its sandbox: for each volume resource, its directory
    /// (created if missing) is linked at <c>SANDBOX/container_path</c> — or, when
    /// <paramref name="link"/> is false (containers, whose runtime bind-mounts the volume), an empty
    /// directory is made there as the mount point. Returns each volume's host directory and
    /// container path. Throws <see cref="ArgumentException"/> for unsafe paths and
    /// <see cref="IOException"/> when the link cannot be made.
    /// </summary>
    public IReadOnlyList<Execution.VolumeMount> Attach(TaskInfo task, string sandbox, bool link = true)
    {
        ArgumentNullException.ThrowIfNull(task);
        var mounts = new List<Execution.VolumeMount>();
        foreach (var v in task.Resources.Where(IsVolume))
        {
            var host = HostPath(v);
            var containerPath = v.Disk.Volume?.ContainerPath ?? "";
            var parts = containerPath.Split('/');
            if (containerPath.Length == 0 || containerPath.StartsWith('/') || !parts.All(IsSafeSegment))
            {
                throw new ArgumentException($"volume '{v.Disk.Persistence.Id}' has container_path '{containerPath}'; it must be a plain path relative to the sandbox");
            }
            Directory.CreateDirectory(host);
            var path = Path.Combine([sandbox, .. parts]);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var existing = new System.IO.FileInfo(path);
            if (existing.LinkTarget is not null)
            {
                existing.Delete();
            }
            else if (Directory.Exists(path) || File.Exists(path))
            {
                throw new IOException($"cannot attach volume '{v.Disk.Persistence.Id}': {path} already exists in the sandbox (a fetched file?); choose another container_path");
            }
            if (link)
            {
                File.CreateSymbolicLink(path, host);
            }
            else
            {
                Directory.CreateDirectory(path);
            }
            mounts.Add(new Execution.VolumeMount(host, containerPath, v.Disk.Volume?.Mode == Volume.Types.Mode.Ro));
        }
        return mounts;
    }

    /// <summary>A failing volume is logged, never fatal to the master link.</summary>
    private void Guard(Resource volume, string what, Action action)
    {
        try
        {
            action();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            _log.LogError("cannot {What} persistent volume {Volume}: {Message}", what, volume.Disk?.Persistence?.Id, e.Message);
        }
    }

    private static bool IsVolume(Resource r) => r.Name == "disk" && r.Disk?.Persistence is { Id.Length: > 0 };

    private static bool IsSafeSegment(string s) => s.Length is > 0 and <= 255 && s is not ("." or "..") && !s.Contains('/', StringComparison.Ordinal) && !s.Contains('\0', StringComparison.Ordinal);

    private void Save(List<Resource> list)
    {
        lock (_gate)
        {
            _checkpointed = list;
            var message = new MasterMessage.Types.ApplyOperations { CheckpointedResources = { list } };
            Directory.CreateDirectory(Path.GetDirectoryName(_file)!);
            var tmp = _file + ".tmp";
            using (var stream = new FileStream(tmp, FileMode.Create, FileAccess.Write))
            {
                message.WriteTo(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(tmp, _file, overwrite: true);
        }
    }
}
