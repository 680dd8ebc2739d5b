using System.Text.Json;

namespace Scheduler.Jobs.State;

/// <summary>
/// Keeps <see cref="JobsState"/> in one JSON file: each save writes a temporary file, fsyncs it and
/// renames it over the old one (then fsyncs the directory), so a SIGKILL at any moment leaves
/// either the old state or the new one, never a torn file.
/// </summary>
public sealed class JobStateStore
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };
    private readonly string _path;

    public JobStateStore(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Directory.CreateDirectory(directory);
        _path = Path.Combine(directory, "jobs-state.json");
    }

    public string FilePath => _path;

    public JobsState Load()
    {
        if (!File.Exists(_path))
        {
            return new JobsState();
        }
        try
        {
            return JsonSerializer.Deserialize<JobsState>(File.ReadAllText(_path), Json) ?? new JobsState();
        }
        catch (JsonException e)
        {
            throw new InvalidOperationException($"the jobs state file {_path} is not readable ({e.Message}); restore it from a backup or move it away to start with no jobs", e);
        }
    }

    public void Save(JobsState state)
    {
        var temp = _path + ".tmp";
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(file, state, Json);
            file.Flush(flushToDisk: true);
        }
        File.Move(temp, _path, overwrite: true);
        SyncDirectory(Path.GetDirectoryName(_path)!);
    }

    private static void SyncDirectory(string directory)
    {
        try
        {
            using var handle = File.OpenHandle(directory, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, FileOptions.None);
            RandomAccess.FlushToDisk(handle);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Some filesystems refuse to open directories for flushing; the rename is still atomic.
        }
    }
}
