using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Google.Protobuf;
using Sched.V1;
using Scheduler.Resilience;

namespace Scheduler.Agent.StatusUpdates;

/// <summary>
/// The agent's reliable status update queue (CONTRACTS §5): one ordered queue per task, each
/// checkpointed in its own append-only file (<c>meta/updates/&lt;hash&gt;.log</c>, fsynced after
/// every record) so updates survive agent restarts. Only the head of a task's queue is in flight;
/// it is re-sent with doubling backoff until the master acknowledges its uuid, then the next one
/// goes. A task is forgotten once its terminal update is acknowledged. Thread-safe.
/// </summary>
public sealed class StatusUpdateQueue
{
    private const byte UpdateRecord = 1;
    private const byte AckRecord = 2;

    private readonly string _dir;
    private readonly TimeProvider _time;
    private readonly Backoff _retry;
    private readonly Lock _lock = new();
    private readonly Dictionary<(string Framework, string Task), TaskStream> _tasks = [];

    public StatusUpdateQueue(string dir, TimeProvider time, TimeSpan retryMin, TimeSpan retryMax)
    {
        _dir = dir;
        _time = time;
        _retry = new Backoff(retryMin, retryMax) { Jitter = 0 };
        Directory.CreateDirectory(dir);
        Load();
    }

    /// <summary>Raised (outside the lock) when a task's queue has a new head ready to send.</summary>
    public event Action? HeadReady;

    /// <summary>Number of unacknowledged updates over all tasks.</summary>
    public int PendingCount
    {
        get
        {
            lock (_lock)
            {
                return _tasks.Values.Sum(t => t.Pending.Count);
            }
        }
    }

    /// <summary>Appends an update (it must carry a uuid) to its task's queue, durably.</summary>
    public void Enqueue(string frameworkId, TaskStatus status)
    {
        ArgumentException.ThrowIfNullOrEmpty(status.Uuid);
        var update = new AgentMessage.Types.StatusUpdate { FrameworkId = frameworkId, Status = status };
        bool becameHead;
        lock (_lock)
        {
            var key = (frameworkId, status.TaskId);
            if (!_tasks.TryGetValue(key, out var stream))
            {
                stream = new TaskStream(Path.Combine(_dir, FileName(frameworkId, status.TaskId)));
                _tasks[key] = stream;
            }
            Append(stream.Path, UpdateRecord, update.ToByteArray());
            stream.Pending.Enqueue(update);
            stream.Latest = status;
            becameHead = stream.Pending.Count == 1;
            if (becameHead)
            {
                stream.NextSend = _time.GetUtcNow();
                stream.Sends = 0;
            }
        }
        if (becameHead)
        {
            HeadReady?.Invoke();
        }
    }

    /// <summary>
    /// Records an acknowledgement. Only an ack of the current head counts (older or unknown
    /// uuids are ignored). Returns true when the head was acknowledged.
    /// </summary>
    public bool Acknowledge(string frameworkId, string taskId, string uuid)
    {
        bool next;
        lock (_lock)
        {
            if (!_tasks.TryGetValue((frameworkId, taskId), out var stream) || stream.Pending.Count == 0 || stream.Pending.Peek().Status.Uuid != uuid)
            {
                return false;
            }
            var acked = stream.Pending.Dequeue();
            if (stream.Pending.Count == 0 && Scheduler.Protocol.Tasks.TaskLifecycle.IsTerminal(acked.Status.State))
            {
                File.Delete(stream.Path);
                _tasks.Remove((frameworkId, taskId));
                return true;
            }
            Append(stream.Path, AckRecord, Encoding.UTF8.GetBytes(uuid));
            stream.LatestAcknowledged = stream.Pending.Count == 0;
            stream.NextSend = _time.GetUtcNow();
            stream.Sends = 0;
            next = stream.Pending.Count > 0;
        }
        if (next)
        {
            HeadReady?.Invoke();
        }
        return true;
    }

    /// <summary>
    /// The heads due for (re)sending now; each returned head is scheduled for its next resend
    /// with doubled backoff (capped).
    /// </summary>
    public List<AgentMessage.Types.StatusUpdate> TakeDue()
    {
        var now = _time.GetUtcNow();
        var due = new List<AgentMessage.Types.StatusUpdate>();
        lock (_lock)
        {
            foreach (var stream in _tasks.Values)
            {
                if (stream.Pending.Count > 0 && stream.NextSend <= now)
                {
                    due.Add(stream.Pending.Peek());
                    stream.NextSend = now + _retry.Delay(stream.Sends++);
                }
            }
        }
        return due;
    }

    /// <summary>When the next resend is due (null: nothing pending).</summary>
    public DateTimeOffset? NextDue()
    {
        lock (_lock)
        {
            DateTimeOffset? next = null;
            foreach (var s in _tasks.Values)
            {
                if (s.Pending.Count > 0 && (next is null || s.NextSend < next))
                {
                    next = s.NextSend;
                }
            }
            return next;
        }
    }

    /// <summary>Makes every head due now with the initial backoff (after (re)registering).</summary>
    public void ResendAllNow()
    {
        lock (_lock)
        {
            foreach (var s in _tasks.Values)
            {
                s.NextSend = _time.GetUtcNow();
                s.Sends = 0;
            }
        }
        HeadReady?.Invoke();
    }

    /// <summary>The latest status of a task known to the queue, and whether it is acknowledged.</summary>
    public (TaskStatus Status, bool Acknowledged)? Latest(string frameworkId, string taskId)
    {
        lock (_lock)
        {
            return _tasks.TryGetValue((frameworkId, taskId), out var s) && s.Latest is not null ? (s.Latest, s.LatestAcknowledged) : null;
        }
    }

    /// <summary>Unacknowledged updates of one task, oldest first.</summary>
    public List<TaskStatus> Pending(string frameworkId, string taskId)
    {
        lock (_lock)
        {
            return _tasks.TryGetValue((frameworkId, taskId), out var s) ? s.Pending.Select(u => u.Status).ToList() : [];
        }
    }

    /// <summary>Every task the queue knows, with its latest status.</summary>
    public List<(string FrameworkId, TaskStatus Latest)> Tasks()
    {
        lock (_lock)
        {
            return _tasks.Where(kv => kv.Value.Latest is not null).Select(kv => (kv.Key.Framework, kv.Value.Latest!)).ToList();
        }
    }

    /// <summary>Removes a task whose queue is fully acknowledged (non-terminal tasks the agent lost).</summary>
    public void Forget(string frameworkId, string taskId)
    {
        lock (_lock)
        {
            if (_tasks.Remove((frameworkId, taskId), out var s))
            {
                File.Delete(s.Path);
            }
        }
    }

    private void Load()
    {
        foreach (var path in Directory.EnumerateFiles(_dir, "*.log"))
        {
            var stream = new TaskStream(path);
            string? framework = null;
            string? task = null;
            foreach (var (type, payload) in ReadRecords(path))
            {
                if (type == UpdateRecord)
                {
                    var update = AgentMessage.Types.StatusUpdate.Parser.ParseFrom(payload);
                    framework = update.FrameworkId;
                    task = update.Status.TaskId;
                    stream.Pending.Enqueue(update);
                    stream.Latest = update.Status;
                    stream.LatestAcknowledged = false;
                }
                else if (type == AckRecord && stream.Pending.Count > 0 && stream.Pending.Peek().Status.Uuid == Encoding.UTF8.GetString(payload))
                {
                    stream.Pending.Dequeue();
                    stream.LatestAcknowledged = stream.Pending.Count == 0;
                }
            }
            if (framework is null || task is null)
            {
                File.Delete(path);
                continue;
            }
            if (stream.Pending.Count == 0 && stream.Latest is not null && Scheduler.Protocol.Tasks.TaskLifecycle.IsTerminal(stream.Latest.State))
            {
                File.Delete(path);
                continue;
            }
            stream.NextSend = _time.GetUtcNow();
            stream.Sends = 0;
            _tasks[(framework, task)] = stream;
        }
    }

    /// <summary>Reads the complete records of a log; a torn tail (crash mid-append) is dropped.</summary>
    private static IEnumerable<(byte Type, byte[] Payload)> ReadRecords(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var offset = 0;
        while (offset + 9 <= bytes.Length)
        {
            var length = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(offset));
            var type = bytes[offset + 4];
            var crc = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + 5));
            if (length < 0 || offset + 9 + length > bytes.Length)
            {
                yield break;
            }
            var payload = bytes.AsSpan(offset + 9, length).ToArray();
            if (Crc(type, payload) != crc)
            {
                yield break;
            }
            yield return (type, payload);
            offset += 9 + length;
        }
    }

    private static void Append(string path, byte type, byte[] payload)
    {
        var record = new byte[9 + payload.Length];
        BinaryPrimitives.WriteInt32LittleEndian(record, payload.Length);
        record[4] = type;
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(5), Crc(type, payload));
        payload.CopyTo(record, 9);
        using var file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
        file.Write(record);
        file.Flush(flushToDisk: true);
    }

    private static uint Crc(byte type, byte[] payload)
    {
        Span<byte> hash = stackalloc byte[32];
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData([type]);
        sha.AppendData(payload);
        sha.GetHashAndReset(hash);
        return BinaryPrimitives.ReadUInt32LittleEndian(hash);
    }

    private static string FileName(string frameworkId, string taskId)
        => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(frameworkId + "\n" + taskId)))[..32] + ".log";

    private sealed class TaskStream(string path)
    {
        public string Path { get; } = path;

        public Queue<AgentMessage.Types.StatusUpdate> Pending { get; } = new();

        public TaskStatus? Latest { get; set; }

        public bool LatestAcknowledged { get; set; }

        public DateTimeOffset NextSend { get; set; }

        /// <summary>Sends of the head so far: the next waits <c>retryMin · 2^Sends</c>, capped.</summary>
        public int Sends { get; set; }
    }
}
