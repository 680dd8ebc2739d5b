using System.Globalization;
using Sched.V1;

namespace Scheduler.Jobs.Engine;

/// <summary>
/// The masters' quota view as the jobs framework last read it (<c>Operator.GetRoles</c> and
/// <c>Operator.GetQuota</c>), and what it says about pending instances: whether a role, or a role
/// above it, lacks room under its quota limit for what the role's pending instances want, e.g.
/// "role eng lacks 6 cpus under its quota limit (limit 8, 4 held by tasks, 10 wanted by 5
/// pending instances)". Pure: no I/O.
/// </summary>
/// <remarks>
/// A role's figures in <c>GetRoles</c> cover its subtree: <c>allocated</c> is what its tasks hold
/// plus what is offered to it, as the master counts against a limit; <c>offered</c> is per role.
/// What tasks hold is therefore the subtree's allocated minus the offers of the roles in it:
/// offers outstanding (some of them to this framework) can still go to the pending instances.
/// </remarks>
public sealed class QuotaShortfall
{
    /// <summary>Text every quota reason contains (to recognise one later).</summary>
    public const string Marker = "under its quota limit";

    private static readonly string[] Limited = ["cpus", "mem", "disk", "gpus"];
    private readonly Dictionary<string, RoleState> _roles;
    private readonly Dictionary<string, QuotaInfo> _quotas;

    public QuotaShortfall(GetRolesResponse roles, GetQuotaResponse quotas)
    {
        ArgumentNullException.ThrowIfNull(roles);
        ArgumentNullException.ThrowIfNull(quotas);
        _roles = roles.Roles.GroupBy(r => r.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        _quotas = new Dictionary<string, QuotaInfo>(StringComparer.Ordinal);
        foreach (var q in quotas.Quotas.Concat(roles.Roles.Where(r => r.Quota is not null).Select(r => r.Quota)))
        {
            if (q.Limits.Count > 0 && q.Role.Length > 0)
            {
                _quotas.TryAdd(q.Role, q);
            }
        }
    }

    /// <summary>Whether any role has a quota limit (nothing to explain otherwise).</summary>
    public bool AnyLimits => _quotas.Count > 0;

    /// <summary>
    /// Why instances of <paramref name="role"/> wanting <paramref name="wanted"/> in all
    /// (<paramref name="instances"/> of them) cannot all start under the quota limits of that role
    /// or a role above it; null when the limits leave room (or there are none).
    /// </summary>
    public string? Reason(string role, IReadOnlyDictionary<string, double> wanted, int instances)
    {
        ArgumentNullException.ThrowIfNull(role);
        ArgumentNullException.ThrowIfNull(wanted);
        foreach (var ancestor in SelfAndAncestors(role))
        {
            if (!_quotas.TryGetValue(ancestor, out var quota))
            {
                continue;
            }
            foreach (var limit in quota.Limits.Where(l => l.ValueCase == Resource.ValueOneofCase.Scalar && Limited.Contains(l.Name)))
            {
                var want = wanted.GetValueOrDefault(limit.Name);
                if (want <= 0)
                {
                    continue;
                }
                var held = Math.Max(0, Allocated(ancestor, limit.Name) - Offered(ancestor, limit.Name));
                var room = Math.Max(0, limit.Scalar - held);
                if (want > room + 1e-9)
                {
                    var unit = limit.Name is "mem" or "disk" ? " MiB" : "";
                    var whose = ancestor == role ? $"role {role}" : $"role {ancestor} (above {role})";
                    var amount = limit.Name is "cpus" or "gpus" ? $"{Num(want - room)} {limit.Name}" : $"{Num(want - room)}{unit} {limit.Name}";
                    return $"{whose} lacks {amount} {Marker} (limit {Num(limit.Scalar)}{unit}, {Num(held)}{unit} held by tasks, " +
                        $"{Num(want)}{unit} wanted by {instances} pending {(instances == 1 ? "instance" : "instances")}); " +
                        $"raise the limit ('schedctl quota set {ancestor} …') or ask for less";
                }
            }
        }
        return null;
    }

    private static IEnumerable<string> SelfAndAncestors(string role)
    {
        for (var r = role; r.Length > 0; r = r.LastIndexOf('/') is var i and > 0 ? r[..i] : "")
        {
            yield return r;
        }
    }

    private static bool InTree(string role, string root) =>
        role == root || (role.Length > root.Length && role[root.Length] == '/' && role.StartsWith(root, StringComparison.Ordinal));

    /// <summary>The subtree's allocation: the role's own figure (which covers its subtree), or, when
    /// the master lists no such role, the sum over its topmost listed descendants.</summary>
    private double Allocated(string root, string resource)
    {
        if (_roles.TryGetValue(root, out var own))
        {
            return Scalar(own.Allocated, resource);
        }
        var inTree = _roles.Keys.Where(r => InTree(r, root)).ToList();
        return inTree.Where(r => !inTree.Any(other => other != r && InTree(r, other)))
            .Sum(r => Scalar(_roles[r].Allocated, resource));
    }

    private double Offered(string root, string resource) =>
        _roles.Values.Where(r => InTree(r.Name, root)).Sum(r => Scalar(r.Offered, resource));

    private static double Scalar(IEnumerable<Resource> resources, string name) =>
        resources.Where(r => r.Name == name && r.ValueCase == Resource.ValueOneofCase.Scalar).Sum(r => r.Scalar);

    private static string Num(double v) => Math.Round(v, 3).ToString("0.###", CultureInfo.InvariantCulture);
}
