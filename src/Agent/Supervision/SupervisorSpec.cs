using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Scheduler.Agent.Isolation;

namespace Scheduler.Agent.Supervision;

/// <summary>
/// What a supervisor runs, written by the agent to <c>RUN_DIR/spec</c> before starting it, in a
/// format the native supervisor (<c>native/supervisor/sched-supervisor.c</c>) reads without a
/// parser: records <c>key=value</c>, each terminated by a NUL byte; <c>arg</c>, <c>env</c>,
/// <c>join</c> and <c>remove</c> repeat, in order. This class is the one definition of that spec.
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

    /// <summary>The container's cgroups (see <see cref="IIsolator.Layout"/>).</summary>
    public CgroupLayout Cgroup { get; set; } = CgroupLayout.None;

    public string ContainerId { get; set; } = "";

    /// <summary>Whether the supervisor should put the task into the container's cgroups itself
    /// (false for OCI tasks, whose runtime does it).</summary>
    public bool JoinCgroups { get; set; } = true;

    /// <summary>SIGTERM → SIGKILL grace when a kill request gives none.</summary>
    public double GraceSeconds { get; set; } = 3;

    /// <summary>For OCI tasks: the runtime binary and its state root, so clean-up goes through the
    /// runtime (<c>runtime --root ROOT delete --force CONTAINER</c>).</summary>
    public string? Runtime { get; set; }

    public string? RuntimeRoot { get; set; }

    /// <summary>The spec in the supervisor's record format.</summary>
    /// <exception cref="ArgumentException">A value holds a NUL byte (no process can receive it).</exception>
    public byte[] ToRecords()
    {
        var sb = new StringBuilder(1024);
        foreach (var a in Argv)
        {
            Add(sb, "arg", a);
        }
        foreach (var kv in Env)
        {
            if (kv.Key.Length == 0 || kv.Key.Contains('=', StringComparison.Ordinal))
            {
                throw new ArgumentException($"environment variable name '{kv.Key}' is empty or contains '='");
            }
            Add(sb, "env", kv.Key + "=" + kv.Value);
        }
        Add(sb, "cwd", WorkingDir);
        Add(sb, "stdout", Stdout);
        Add(sb, "stderr", Stderr);
        if (!string.IsNullOrEmpty(User))
        {
            Add(sb, "user", User);
        }
        Add(sb, "cgroup", Cgroup.Kind);
        foreach (var kv in Cgroup.Dirs)
        {
            Add(sb, kv.Key, kv.Value);
        }
        if (JoinCgroups)
        {
            foreach (var f in Cgroup.ProcsFiles)
            {
                Add(sb, "join", f);
            }
        }
        foreach (var d in Cgroup.RemoveDirs)
        {
            Add(sb, "remove", d);
        }
        Add(sb, "grace", GraceSeconds.ToString("R", CultureInfo.InvariantCulture));
        Add(sb, "container_id", ContainerId);
        if (Runtime is not null)
        {
            Add(sb, "runtime", Runtime);
            Add(sb, "runtime_root", RuntimeRoot ?? "/run/runc");
        }
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    private static void Add(StringBuilder sb, string key, string value)
    {
        if (value.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException($"the task's {key} contains a NUL byte: '{value.Replace('\0', '?')}'");
        }
        sb.Append(key).Append('=').Append(value).Append('\0');
    }
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

    /// <summary>Why, as a keyword: <c>executable_not_found</c>, <c>not_executable</c>, <c>cgroup</c>,
    /// <c>user</c>, <c>spec</c>, <c>launch_failed</c>.</summary>
    public string? LaunchReason { get; set; }

    public ulong MemPeakBytes { get; set; }

    public ulong MemLimitBytes { get; set; }

    public double CpuUserSeconds { get; set; }

    public double CpuSystemSeconds { get; set; }

    public double FinishedAt { get; set; }
}

[JsonSourceGenerationOptions(WriteIndented = true)]
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
