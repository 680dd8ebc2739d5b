using Google.Protobuf;
using Sched.V1;

namespace Scheduler.Master.Registry;

/// <summary>
/// The typed layer over <see cref="IRegistryStore"/>: the record keys of
/// protos/sched/v1/registry.proto and a loader that parses every record.
/// </summary>
public static class RegistryRecords
{
    public const string AgentPrefix = "agents/";
    public const string FrameworkPrefix = "frameworks/";
    public const string QuotaPrefix = "quotas/";
    public const string WeightPrefix = "weights/";
    public const string SecretPrefix = "secrets/";

    /// <summary><c>secrets/ROLE/NAME</c>: names have no slash, so the last one ends the role.</summary>
    public static string SecretKey(string role, string name) => SecretPrefix + RequireRole(role) + "/" + RequireId(name, nameof(name));

    public static string AgentKey(string agentId) => AgentPrefix + RequireId(agentId, nameof(agentId));

    public static string FrameworkKey(string frameworkId) => FrameworkPrefix + RequireId(frameworkId, nameof(frameworkId));

    /// <summary>Roles are hierarchical (<c>eng/web</c>): the key keeps the role's slashes
    /// (<c>quotas/eng/web</c>); the prefix alone tells record kinds apart.</summary>
    public static string QuotaKey(string role) => QuotaPrefix + RequireRole(role);

    public static string WeightKey(string role) => WeightPrefix + RequireRole(role);

    public static RegistryWrite PutAgent(AgentRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return RegistryWrite.Put(AgentKey(record.Info?.Id ?? ""), record);
    }

    public static RegistryWrite PutFramework(FrameworkRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return RegistryWrite.Put(FrameworkKey(record.Info?.Id ?? ""), record);
    }

    public static RegistryWrite PutQuota(QuotaInfo quota)
    {
        ArgumentNullException.ThrowIfNull(quota);
        return RegistryWrite.Put(QuotaKey(quota.Role), quota);
    }

    public static RegistryWrite PutWeight(WeightInfo weight)
    {
        ArgumentNullException.ThrowIfNull(weight);
        return RegistryWrite.Put(WeightKey(weight.Role), weight);
    }

    /// <summary>
    /// Parses the result of <see cref="IRegistryStore.LoadAsync"/>. Throws
    /// <see cref="RegistryCorruptException"/> naming the first key whose record does not parse, whose
    /// prefix is unknown, or whose id does not match the record's own id.
    /// </summary>
    public static RegistrySnapshot Parse(IReadOnlyDictionary<string, ByteString> records, string location)
    {
        ArgumentNullException.ThrowIfNull(records);
        var agents = new Dictionary<string, AgentRecord>(StringComparer.Ordinal);
        var frameworks = new Dictionary<string, FrameworkRecord>(StringComparer.Ordinal);
        var quotas = new Dictionary<string, QuotaInfo>(StringComparer.Ordinal);
        var weights = new Dictionary<string, WeightInfo>(StringComparer.Ordinal);
        var secrets = new Dictionary<string, SecretRecord>(StringComparer.Ordinal);
        foreach (var (key, value) in records.OrderBy(r => r.Key, StringComparer.Ordinal))
        {
            if (key.StartsWith(AgentPrefix, StringComparison.Ordinal))
            {
                var r = ParseOne(AgentRecord.Parser, key, value, location);
                Check(key, AgentPrefix, r.Info?.Id, location);
                agents[key[AgentPrefix.Length..]] = r;
            }
            else if (key.StartsWith(FrameworkPrefix, StringComparison.Ordinal))
            {
                var r = ParseOne(FrameworkRecord.Parser, key, value, location);
                Check(key, FrameworkPrefix, r.Info?.Id, location);
                frameworks[key[FrameworkPrefix.Length..]] = r;
            }
            else if (key.StartsWith(QuotaPrefix, StringComparison.Ordinal))
            {
                var r = ParseOne(QuotaInfo.Parser, key, value, location);
                Check(key, QuotaPrefix, r.Role, location);
                quotas[r.Role] = r;
            }
            else if (key.StartsWith(WeightPrefix, StringComparison.Ordinal))
            {
                var r = ParseOne(WeightInfo.Parser, key, value, location);
                Check(key, WeightPrefix, r.Role, location);
                weights[r.Role] = r;
            }
            else if (key.StartsWith(SecretPrefix, StringComparison.Ordinal))
            {
                var r = ParseOne(SecretRecord.Parser, key, value, location);
                Check(key, SecretPrefix, r.Role + "/" + r.Name, location);
                secrets[key] = r;
            }
            else
            {
                throw new RegistryCorruptException(location, key,
                    $"Registry record '{key}' in {location} has an unknown key prefix (expected {AgentPrefix}, {FrameworkPrefix}, {QuotaPrefix} or {WeightPrefix}); it was written by a newer or foreign version.");
            }
        }
        return new RegistrySnapshot(agents, frameworks, quotas, weights) { Secrets = secrets };
    }

    /// <summary>Loads and parses every record of <paramref name="store"/>.</summary>
    public static async Task<RegistrySnapshot> LoadAsync(IRegistryStore store, string location, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        var records = await store.LoadAsync(cancellationToken).ConfigureAwait(false);
        return Parse(records, location);
    }

    private static T ParseOne<T>(MessageParser<T> parser, string key, ByteString value, string location)
        where T : IMessage<T>
    {
        try
        {
            return parser.ParseFrom(value);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new RegistryCorruptException(location, key,
                $"Registry record '{key}' in {location} is not a valid {typeof(T).Name}: {e.Message}", e);
        }
    }

    private static void Check(string key, string prefix, string? id, string location)
    {
        if (id is null || !string.Equals(key.AsSpan(prefix.Length).ToString(), id, StringComparison.Ordinal))
        {
            throw new RegistryCorruptException(location, key,
                $"Registry record '{key}' in {location} holds id '{id}', which does not match its key.");
        }
    }

    private static string RequireRole(string role)
    {
        ArgumentException.ThrowIfNullOrEmpty(role);
        return role;
    }

    private static string RequireId(string id, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(id, name);
        if (id.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{id}' is not a valid {name}: it must not contain '/'.", name);
        }
        return id;
    }
}

/// <summary>Every record of the registry, parsed; keyed by agent id, framework id and role.</summary>
public sealed record RegistrySnapshot(
    IReadOnlyDictionary<string, AgentRecord> Agents,
    IReadOnlyDictionary<string, FrameworkRecord> Frameworks,
    IReadOnlyDictionary<string, QuotaInfo> Quotas,
    IReadOnlyDictionary<string, WeightInfo> Weights)
{
    /// <summary>Role secrets (encrypted), by registry key.</summary>
    public IReadOnlyDictionary<string, SecretRecord> Secrets { get; init; } = new Dictionary<string, SecretRecord>();
}
