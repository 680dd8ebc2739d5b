namespace Scheduler.Master.Registry;

/// <summary>Another master holds the registry of this work directory.</summary>
public sealed class RegistryLockedException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A registry file or record could not be parsed.</summary>
public sealed class RegistryCorruptException(string location, string? key, string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The file (or store) holding the bad data.</summary>
    public string Location { get; } = location;

    /// <summary>The key of the record that does not parse; null when the whole file is bad.</summary>
    public string? Key { get; } = key;
}
