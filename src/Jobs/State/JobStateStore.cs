using System.Text.Json;
using Google.Protobuf;
using Scheduler.Master.Registry;

namespace Scheduler.Jobs.State;

/// <summary>
/// Keeps <see cref="JobsState"/> in a registry store of the same kinds the masters use
/// (<see cref="IRegistryStore"/>): the embedded file store (<see cref="FileRegistryStore"/>, fsync
/// and atomic rename) beside a single master, or etcd (<see cref="EtcdRegistryStore"/>) under the
/// jobs' own key prefix when the masters run on etcd, every write fenced by the jobs framework's
/// own leadership. One record per job (<c>job/NAME</c>, JSON) and one for the framework
/// (<c>meta</c>: its id and the task-number counter); a save writes only the records that changed,
/// in one commit (all or none), and returns once the store has confirmed it.
/// </summary>
public sealed class JobStateStore
{
    /// <summary>The key of the framework-wide record.</summary>
    public const string MetaKey = "meta";

    /// <summary>The key prefix of the job records.</summary>
    public const string JobPrefix = "job/";

    /// <summary>The state file of earlier versions, imported once into an empty store.</summary>
    public const string LegacyFileName = "jobs-state.json";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };
    private readonly IRegistryStore _registry;
    private readonly int _maxRecordsPerCommit;
    private Dictionary<string, ByteString> _written;

    private JobStateStore(IRegistryStore registry, Dictionary<string, ByteString> written, int maxRecordsPerCommit)
    {
        _registry = registry;
        _written = written;
        _maxRecordsPerCommit = maxRecordsPerCommit;
    }

    /// <summary>How many commits were written (for tests).</summary>
    public long Commits { get; private set; }

    /// <summary>
    /// Reads the state from <paramref name="registry"/>. When the store is empty and
    /// <paramref name="legacyDirectory"/> holds a <see cref="LegacyFileName"/> of an earlier
    /// version, that file is imported (written to the store, then renamed <c>.imported</c>).
    /// </summary>
    /// <param name="maxRecordsPerCommit">The most records one commit may change (etcd's --max-txn-ops).</param>
    public static async Task<(JobStateStore Store, JobsState State)> LoadAsync(IRegistryStore registry, string? legacyDirectory, int maxRecordsPerCommit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(registry);
        var records = await registry.LoadAsync(cancellationToken).ConfigureAwait(false);
        var state = new JobsState();
        var written = new Dictionary<string, ByteString>(StringComparer.Ordinal);
        foreach (var (key, value) in records)
        {
            written[key] = value;
            if (key == MetaKey)
            {
                var meta = Read<MetaRecord>(key, value);
                state.FrameworkId = meta.FrameworkId;
                state.NextTaskNumber = meta.NextTaskNumber;
            }
            else if (key.StartsWith(JobPrefix, StringComparison.Ordinal))
            {
                var job = Read<JobRecord>(key, value);
                state.Jobs[job.Name] = job;
            }
        }
        var store = new JobStateStore(registry, written, Math.Max(2, maxRecordsPerCommit));
        var legacy = legacyDirectory is null ? null : Path.Combine(legacyDirectory, LegacyFileName);
        if (records.Count == 0 && legacy is not null && File.Exists(legacy))
        {
            state = ReadLegacy(legacy);
            await store.SaveAsync(state, cancellationToken).ConfigureAwait(false);
            File.Move(legacy, legacy + ".imported", overwrite: true);
        }
        return (store, state);
    }

    /// <summary>
    /// Writes the records of <paramref name="state"/> that differ from the last saved ones and
    /// deletes those of jobs that are gone; blocks until the store confirms. Throws
    /// <see cref="RegistryFencedException"/> when this instance no longer leads and
    /// <see cref="RegistryUnavailableException"/> when the store did not confirm (the records stay
    /// due and go with the next save).
    /// </summary>
    public void Save(JobsState state) => SaveAsync(state, CancellationToken.None).GetAwaiter().GetResult();

    /// <inheritdoc cref="Save"/>
    public async Task SaveAsync(JobsState state, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(state);
        var records = new Dictionary<string, ByteString>(StringComparer.Ordinal)
        {
            [MetaKey] = Bytes(new MetaRecord { FrameworkId = state.FrameworkId, NextTaskNumber = state.NextTaskNumber }),
        };
        foreach (var job in state.Jobs.Values)
        {
            records[JobPrefix + job.Name] = Bytes(job);
        }
        var writes = new List<RegistryWrite>();
        // The meta record goes first: a task number is never handed out before the counter past it
        // is stored, even when the changes take more than one commit.
        if (!_written.TryGetValue(MetaKey, out var oldMeta) || !oldMeta.Equals(records[MetaKey]))
        {
            writes.Add(new RegistryWrite(MetaKey, records[MetaKey]));
        }
        foreach (var (key, value) in records.Where(r => r.Key != MetaKey))
        {
            if (!_written.TryGetValue(key, out var old) || !old.Equals(value))
            {
                writes.Add(new RegistryWrite(key, value));
            }
        }
        foreach (var key in _written.Keys.Where(k => !records.ContainsKey(k)))
        {
            writes.Add(RegistryWrite.Delete(key));
        }
        // Each job's record is whole in every commit; only a change of more records than one
        // commit may hold is split, job by job.
        foreach (var chunk in writes.Chunk(_maxRecordsPerCommit))
        {
            await _registry.CommitAsync(chunk, cancellationToken).ConfigureAwait(false);
            Commits++;
            var next = new Dictionary<string, ByteString>(_written, StringComparer.Ordinal);
            foreach (var w in chunk)
            {
                if (w.Value is null)
                {
                    next.Remove(w.Key);
                }
                else
                {
                    next[w.Key] = w.Value;
                }
            }
            _written = next;
        }
    }

    private static ByteString Bytes<T>(T value) => ByteString.CopyFrom(JsonSerializer.SerializeToUtf8Bytes(value, Json));

    private static T Read<T>(string key, ByteString value)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(value.Span, Json) ?? throw new JsonException("the record is null");
        }
        catch (JsonException e)
        {
            throw new InvalidOperationException($"the jobs state record '{key}' is not readable ({e.Message}); restore the store from a backup, or delete that record to forget it", e);
        }
    }

    private static JobsState ReadLegacy(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<JobsState>(File.ReadAllText(path), Json) ?? new JobsState();
        }
        catch (JsonException e)
        {
            throw new InvalidOperationException($"the jobs state file {path} of an earlier version is not readable ({e.Message}); restore it from a backup or move it away to start with no jobs", e);
        }
    }

    private sealed class MetaRecord
    {
        public string? FrameworkId { get; set; }

        public long NextTaskNumber { get; set; } = 1;
    }
}
