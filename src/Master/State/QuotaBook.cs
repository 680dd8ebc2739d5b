using Sched.V1;
using Scheduler.Master.Registry;
using Scheduler.Master.Validation;
using Scheduler.Protocol.Resources;

namespace Scheduler.Master.State;

/// <summary>
/// The quotas and weights of roles as the master holds and persists them (the allocator keeps
/// its own copy for its DRF order). Changes return the registry write that makes them durable.
/// Owned by the master loop (not thread-safe).
/// </summary>
public sealed class QuotaBook
{
    private readonly Dictionary<string, QuotaInfo> _quotas = new(StringComparer.Ordinal);
    private readonly Dictionary<string, double> _weights = new(StringComparer.Ordinal);

    /// <summary>True when no role has a quota.</summary>
    public bool IsEmpty => _quotas.Count == 0;

    /// <summary>Every quota, by role name.</summary>
    public IEnumerable<QuotaInfo> Quotas => _quotas.Values.OrderBy(q => q.Role, StringComparer.Ordinal);

    /// <summary>Every weight set by an operator.</summary>
    public IReadOnlyList<WeightInfo> Weights => [.. _weights.Select(w => new WeightInfo { Role = w.Key, Weight = w.Value })];

    /// <summary>The quota of <paramref name="role"/>, if it has one.</summary>
    public QuotaInfo? Quota(string role) => _quotas.GetValueOrDefault(role);

    /// <summary>Takes the quotas and weights of a registry snapshot (at the start of a term).</summary>
    public void Load(RegistrySnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        foreach (var quota in snapshot.Quotas.Values)
        {
            _quotas[quota.Role] = quota;
        }
        foreach (var weight in snapshot.Weights.Values)
        {
            _weights[weight.Role] = weight.Weight;
        }
    }

    /// <summary>What is wrong with one quota of an UpdateQuota call taken on its own (role name,
    /// scalar resources, guarantees within limits); null when nothing is.</summary>
    public static string? Problem(QuotaInfo q)
    {
        ArgumentNullException.ThrowIfNull(q);
        if (RoleName.Validate(q.Role) is { } bad)
        {
            return $"quota role: {bad}";
        }
        foreach (var r in q.Guarantees.Concat(q.Limits))
        {
            if (r.ValueCase != Resource.ValueOneofCase.Scalar)
            {
                return $"quota of role '{q.Role}': resource '{r.Name}' is not a scalar; quotas take cpus, mem, disk, gpus";
            }
        }
        if (ResourceChecks.Validate(q.Guarantees.Concat(q.Limits)) is { } badResource)
        {
            return $"quota of role '{q.Role}': {badResource}";
        }
        foreach (var g in q.Guarantees)
        {
            var limit = q.Limits.FirstOrDefault(l => l.Name == g.Name);
            if (limit is not null && limit.Scalar < g.Scalar)
            {
                return $"quota of role '{q.Role}': guarantee of {g.Name} ({g.Scalar}) exceeds its limit ({limit.Scalar})";
            }
        }
        return null;
    }

    /// <summary>Every role's guarantees as they would be with <paramref name="changes"/> applied (nothing is changed).</summary>
    public IEnumerable<Resource> GuaranteesWith(IEnumerable<QuotaInfo> changes)
    {
        var merged = new Dictionary<string, QuotaInfo>(_quotas, StringComparer.Ordinal);
        foreach (var q in changes)
        {
            merged[q.Role] = q;
        }
        return merged.Values.SelectMany(q => q.Guarantees).Select(r => new Resource { Name = r.Name, Scalar = r.Scalar });
    }

    /// <summary>Sets the quota of a role (one without guarantees and limits removes it); returns the registry write.</summary>
    public RegistryWrite Set(QuotaInfo q)
    {
        ArgumentNullException.ThrowIfNull(q);
        if (q.Guarantees.Count == 0 && q.Limits.Count == 0)
        {
            _quotas.Remove(q.Role);
            return RegistryWrite.Delete(RegistryRecords.QuotaKey(q.Role));
        }
        _quotas[q.Role] = q.Clone();
        return RegistryWrite.Put(RegistryRecords.QuotaKey(q.Role), q);
    }

    /// <summary>Sets the weight of a role; returns the registry write.</summary>
    public RegistryWrite SetWeight(WeightInfo w)
    {
        ArgumentNullException.ThrowIfNull(w);
        _weights[w.Role] = w.Weight;
        return RegistryWrite.Put(RegistryRecords.WeightKey(w.Role), w);
    }

    /// <summary>The quotas with limits that bound <paramref name="role"/>: its own and its
    /// ancestors' (a limit covers the role's subroles), nearest first.</summary>
    public List<QuotaInfo> LimitsOver(string role)
    {
        var limited = new List<QuotaInfo>();
        for (var r = role; r.Length > 0; r = r.LastIndexOf('/') is var slash and > 0 ? r[..slash] : "")
        {
            if (_quotas.TryGetValue(r, out var q) && q.Limits.Count > 0)
            {
                limited.Add(q);
            }
        }
        return limited;
    }
}
