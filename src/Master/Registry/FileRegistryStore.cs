using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Google.Protobuf;

namespace Scheduler.Master.Registry;

/// <summary>
/// The embedded registry of a single master: every record in one file,
/// <c>&lt;work&gt;/registry/registry.bin</c>. A commit writes the whole record set to a temporary
/// file, fsyncs it, renames it over the old file and fsyncs the directory, so a crash leaves either
/// the old or the new set, never a mix. Concurrent commits are grouped: the writes that queue up
/// while one file is being written go into the next file together (one fsync for many commits),
/// each commit still applied all-or-none and in arrival order.
/// A lock file (<c>registry/LOCK</c>, held with an exclusive flock) keeps a second master from
/// using the same work directory.
/// </summary>
/// <remarks>
/// File format (little endian): magic <c>SCHREG01</c>, int32 record count, then per record
/// int32 key length, UTF-8 key, int32 value length, value bytes; then the SHA-256 of everything
/// before it. A file that does not match is reported as corrupt, naming the file.
/// </remarks>
public sealed class FileRegistryStore : IRegistryStore
{
    private const string FileName = "registry.bin";
    private const string LockFileName = "LOCK";
    private static readonly byte[] Magic = "SCHREG01"u8.ToArray();

    private readonly string _directory;
    private readonly string _path;
    private readonly FileStream _lock;
    private readonly Lock _gate = new();
    private readonly GroupCommitQueue<IReadOnlyList<RegistryWrite>> _commits;
    private Dictionary<string, ByteString>? _records;
    private bool _disposed;

    private FileRegistryStore(string directory, FileStream lockStream)
    {
        _directory = directory;
        _path = Path.Combine(directory, FileName);
        _lock = lockStream;
        _commits = new GroupCommitQueue<IReadOnlyList<RegistryWrite>>(group =>
        {
            WriteGroup(group);
            return Task.CompletedTask;
        });
    }

    /// <summary>Path of the registry file.</summary>
    public string FilePath => _path;

    /// <summary>Number of files written so far (one per group of commits); for tests and metrics.</summary>
    public long FilesWritten => _commits.GroupsCommitted;

    /// <summary>
    /// Opens (creating if needed) the registry under <c><paramref name="workDir"/>/registry</c> and
    /// takes its lock. Throws <see cref="RegistryLockedException"/> when another master holds it.
    /// </summary>
    public static FileRegistryStore Open(string workDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(workDir);
        var directory = Path.Combine(Path.GetFullPath(workDir), "registry");
        Directory.CreateDirectory(directory);
        var lockPath = Path.Combine(directory, LockFileName);
        FileStream lockStream;
        try
        {
            lockStream = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new RegistryLockedException(
                $"The registry in '{directory}' is in use by another master (lock file '{lockPath}' is held). " +
                "Each master needs its own work directory; stop the other master or choose another --work-dir.", e);
        }
        return new FileRegistryStore(directory, lockStream);
    }

    /// <inheritdoc />
    public Task<IReadOnlyDictionary<string, ByteString>> LoadAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _records ??= ReadFile(_path);
            return Task.FromResult<IReadOnlyDictionary<string, ByteString>>(new Dictionary<string, ByteString>(_records, StringComparer.Ordinal));
        }
    }

    /// <inheritdoc />
    public async Task CommitAsync(IReadOnlyList<RegistryWrite> writes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(writes);
        foreach (var w in writes)
        {
            ArgumentException.ThrowIfNullOrEmpty(w.Key, nameof(writes));
        }
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
        }
        // Once queued the commit cannot be withdrawn (it may already be on disk): cancellation only
        // stops the caller from waiting.
        await _commits.Enqueue(writes).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes one group of commits as one new file, each commit applied in order.</summary>
    private void WriteGroup(IReadOnlyList<IReadOnlyList<RegistryWrite>> group)
    {
        Dictionary<string, ByteString> current;
        lock (_gate)
        {
            _records ??= ReadFile(_path);
            current = _records;
        }
        var next = new Dictionary<string, ByteString>(current, StringComparer.Ordinal);
        foreach (var writes in group)
        {
            foreach (var w in writes)
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
        }
        try
        {
            WriteFile(next);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RegistryUnavailableException($"Could not write the registry file '{_path}': {e.Message}", e);
        }
        lock (_gate)
        {
            _records = next;
        }
    }

    private void WriteFile(Dictionary<string, ByteString> records)
    {
        var tmp = _path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var int32 = new byte[4];
            void Put(ReadOnlySpan<byte> data)
            {
                fs.Write(data);
                sha.AppendData(data);
            }
            void PutInt(int value)
            {
                BinaryPrimitives.WriteInt32LittleEndian(int32, value);
                Put(int32);
            }
            Put(Magic);
            PutInt(records.Count);
            foreach (var (key, value) in records.OrderBy(r => r.Key, StringComparer.Ordinal))
            {
                var keyBytes = Encoding.UTF8.GetBytes(key);
                PutInt(keyBytes.Length);
                Put(keyBytes);
                PutInt(value.Length);
                Put(value.Span);
            }
            fs.Write(sha.GetHashAndReset());
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, _path, overwrite: true);
        DirectorySync.Fsync(_directory);
    }

    private static Dictionary<string, ByteString> ReadFile(string path)
    {
        var records = new Dictionary<string, ByteString>(StringComparer.Ordinal);
        byte[] data;
        try
        {
            data = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException)
        {
            return records;
        }
        string Corrupt(string what) =>
            $"The registry file '{path}' is corrupt ({what}). Restore it from a backup, or move it away to start with an empty registry (agents and frameworks will have to register again).";
        if (data.Length < Magic.Length + 4 + 32 || !data.AsSpan(0, Magic.Length).SequenceEqual(Magic))
        {
            throw new RegistryCorruptException(path, null, Corrupt("bad header"));
        }
        var body = data.AsSpan(0, data.Length - 32);
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(data.AsSpan(data.Length - 32)))
        {
            throw new RegistryCorruptException(path, null, Corrupt("checksum mismatch"));
        }
        var pos = Magic.Length;
        int ReadInt(ReadOnlySpan<byte> b)
        {
            if (pos + 4 > b.Length)
            {
                throw new RegistryCorruptException(path, null, Corrupt("truncated record"));
            }
            var v = BinaryPrimitives.ReadInt32LittleEndian(b[pos..]);
            pos += 4;
            if (v < 0 || pos + v > b.Length)
            {
                throw new RegistryCorruptException(path, null, Corrupt("bad length"));
            }
            return v;
        }
        var count = ReadInt(body);
        for (var i = 0; i < count; i++)
        {
            var keyLength = ReadInt(body);
            var key = Encoding.UTF8.GetString(body.Slice(pos, keyLength));
            pos += keyLength;
            var valueLength = ReadInt(body);
            records[key] = ByteString.CopyFrom(body.Slice(pos, valueLength));
            pos += valueLength;
        }
        if (pos != body.Length)
        {
            throw new RegistryCorruptException(path, null, Corrupt("trailing bytes"));
        }
        return records;
    }

    /// <summary>Releases the lock; commits still queued fail with <see cref="ObjectDisposedException"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
        }
        // The file being written when disposal started is finished before the lock is released;
        // commits queued behind it fail.
        await _commits.StopAsync(new ObjectDisposedException(nameof(FileRegistryStore)), drain: false).ConfigureAwait(false);
        await _lock.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>fsync of a directory, so a rename inside it is durable (no managed API does this).</summary>
    private static class DirectorySync
    {
        private const int ORdOnly = 0;
        private const int ODirectory = 0x10000;

        public static void Fsync(string directory)
        {
            if (!OperatingSystem.IsLinux())
            {
                return;
            }
            var path = Encoding.UTF8.GetBytes(directory + "\0");
            var fd = NativeMethods.open(path, ORdOnly | ODirectory);
            if (fd < 0)
            {
                throw new IOException($"Could not open directory '{directory}' to fsync it (errno {Marshal.GetLastPInvokeError()}).");
            }
            try
            {
                if (NativeMethods.fsync(fd) != 0)
                {
                    throw new IOException($"fsync of directory '{directory}' failed (errno {Marshal.GetLastPInvokeError()}).");
                }
            }
            finally
            {
                _ = NativeMethods.close(fd);
            }
        }
    }

    private static class NativeMethods
    {
#pragma warning disable SYSLIB1054, CA5392, CA1401 // plain blittable signatures; LibraryImport would need unsafe code in this project
        [DllImport("libc", SetLastError = true)]
        public static extern int open(byte[] path, int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern int fsync(int fd);

        [DllImport("libc", SetLastError = true)]
        public static extern int close(int fd);
#pragma warning restore SYSLIB1054, CA5392, CA1401
    }
}
