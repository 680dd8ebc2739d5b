using Google.Protobuf;

namespace Scheduler.Master.Registry;

/// <summary>
/// Durable key/value records of the master (see protos/sched/v1/registry.proto for the keys).
/// Two backends: <c>FileRegistryStore</c> (one master; fsync + atomic rename) and
/// <c>EtcdRegistryStore</c> (replicated masters; writes fenced by leadership).
/// One contract test suite runs against both.
/// </summary>
public interface IRegistryStore : IAsyncDisposable
{
    /// <summary>Reads every record. Called by a master when it becomes leader.</summary>
    Task<IReadOnlyDictionary<string, ByteString>> LoadAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Applies the writes atomically (all or none), durably, in order. A null value deletes the key.
    /// Throws <see cref="RegistryFencedException"/> when this master no longer leads (its writes
    /// must stop at once), <see cref="RegistryUnavailableException"/> when the store cannot be
    /// reached (the caller may retry).
    /// </summary>
    Task CommitAsync(IReadOnlyList<RegistryWrite> writes, CancellationToken cancellationToken);
}

/// <summary>Put (<paramref name="Value"/> set) or delete (null) one record.</summary>
public readonly record struct RegistryWrite(string Key, ByteString? Value)
{
    public static RegistryWrite Put(string key, IMessage value) => new(key, value.ToByteString());

    public static RegistryWrite Delete(string key) => new(key, null);
}

/// <summary>The write was refused because this master's leadership ended.</summary>
public sealed class RegistryFencedException(string message) : Exception(message);

/// <summary>
/// The store could not be reached, or did not confirm the write (etcd: timeout or lost quorum).
/// An unconfirmed write lands entirely or not at all — never in part — and only while the writer's
/// term is current; retrying it is safe because writes are whole values.
/// </summary>
public sealed class RegistryUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
