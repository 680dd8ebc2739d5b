using System.Text.Json;
using System.Text.Json.Serialization;

namespace Scheduler.Agent.Supervision;

/// <summary>
/// What a supervisor runs, written by the agent to <c>RUN_DIR/spec.json</c> before starting it.
/// </summary>
public sealed class SupervisorSpec
{
    /// <summary>The task's argv; argv[0] is an absolute path.</summary>
    public List<string> Argv { get; set; } = [];

    public Dictionary<string, string> Env { get; set; } = [];

    public string WorkingDir { get; set; } = "";

    public string Stdout { get; set; } = "";

    public string Stderr { get; set; } = "";

    /// <summary>Unix user to run as (only applied when the supervisor runs as root).</summary>
    public string? User { get; set; }

    /// <summary>Isolator name (<c>cgroups-v1</c>, <c>cgroups-v2</c>, <c>none</c>) and its scope.</summary>
    public string Isolator { get; set; } = "none";

    public string Scope { get; set; } = "";

    public string ContainerId { get; set; } = "";

    /// <summary>Whether the supervisor should put the task into the container's cgroups itself
    /// (false for OCI tasks, whose runtime does it).</summary>
    public bool JoinCgroups { get; set; } = true;

    /// <summary>SIGTERM → SIGKILL grace when a kill request gives none.</summary>
    public double GraceSeconds { get; set; } = 3;

    /// <summary>For OCI tasks: the runtime binary, its state root and the container id, so kills
    /// and clean-up go through the runtime.</summary>
    public string? Runtime { get; set; }

    public string? RuntimeRoot { get; set; }
}

/// <summary>How a supervised task ended, written atomically to <c>RUN_DIR/status.json</c>.</summary>
public sealed class SupervisorResult
{
    public int? ExitCode { get; set; }

    public int? Signal { get; set; }

    public bool Killed { get; set; }

    public bool OomKilled { get; set; }

    /// <summary>Set when the task could not be started at all.</summary>
    public string? LaunchError { get; set; }

    public ulong MemPeakBytes { get; set; }

    public ulong MemLimitBytes { get; set; }

    public double CpuUserSeconds { get; set; }

    public double CpuSystemSeconds { get; set; }

    public double FinishedAt { get; set; }
}

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(SupervisorSpec))]
[JsonSerializable(typeof(SupervisorResult))]
internal sealed partial class SupervisorJson : JsonSerializerContext
{
}

/// <summary>Atomic file writes: temp file, fsync, rename, fsync of the directory.</summary>
internal static class AtomicFile
{
    public static void Write(string path, byte[] data)
    {
        var tmp = path + ".tmp";
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            f.Write(data);
            f.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }

    public static void WriteJson<T>(string path, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info)
        => Write(path, JsonSerializer.SerializeToUtf8Bytes(value, info));

    public static T? ReadJson<T>(string path, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info)
        where T : class
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), info);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
