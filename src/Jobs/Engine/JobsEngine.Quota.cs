using Scheduler.Jobs.Spec;
using Scheduler.Jobs.State;

namespace Scheduler.Jobs.Engine;

/// <summary>Pending instances explained by the masters' quota limits (<see cref="QuotaShortfall"/>).</summary>
public sealed partial class JobsEngine
{
    private QuotaShortfall? _quota;

    /// <summary>Whether any instance waits for an offer (the framework reads the quota view only then).</summary>
    public bool HasPending()
    {
        lock (_lock)
        {
            return _state.Jobs.Values.Any(j => !j.Stopped && j.Instances.Any(i => i.State == InstanceStates.Pending));
        }
    }

    /// <summary>Installs the masters' latest quota view and explains the pending instances by it.</summary>
    public void SetQuotaView(QuotaShortfall view)
    {
        ArgumentNullException.ThrowIfNull(view);
        lock (_lock)
        {
            _quota = view;
            ExplainByQuota();
        }
    }

    /// <summary>
    /// Gives the pending instances of each role the quota reason when the role (or one above it)
    /// lacks room under its limit for all of them. Reasons more specific than "no offers" or "no
    /// offer fits" (parallelism, constraints) are left alone. Called under the lock.
    /// </summary>
    private void ExplainByQuota()
    {
        if (_quota is not { AnyLimits: true } quota)
        {
            return;
        }
        var pending = _state.Jobs.Values.Where(j => !j.Stopped)
            .SelectMany(j => j.Instances.Where(i => i.State == InstanceStates.Pending && ExplainedByOffers(i.PendingReason)).Select(i => (Spec: _specs[j.Name], Instance: i)))
            .GroupBy(p => p.Spec.Role, StringComparer.Ordinal);
        foreach (var role in pending)
        {
            var wanted = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var (spec, _) in role)
            {
                Add(wanted, "cpus", spec.Task.Cpus);
                Add(wanted, "mem", spec.Task.Mem);
                Add(wanted, "disk", spec.Task.Disk);
            }
            var reason = quota.Reason(role.Key, wanted, role.Count());
            foreach (var (_, i) in role)
            {
                if (reason is not null)
                {
                    i.PendingReason = reason;
                }
                else if (i.PendingReason is { } old && old.Contains(QuotaShortfall.Marker, StringComparison.Ordinal))
                {
                    // The limit was raised (or tasks ended): the old quota reason no longer holds.
                    i.PendingReason = null;
                }
            }
        }
    }

    private static bool ExplainedByOffers(string? reason) =>
        reason is null
        || reason.StartsWith("no offers for role", StringComparison.Ordinal)
        || reason.StartsWith("no offer fits", StringComparison.Ordinal)
        || reason.StartsWith("gang of", StringComparison.Ordinal)
        || reason.Contains(QuotaShortfall.Marker, StringComparison.Ordinal);

    private static void Add(Dictionary<string, double> sums, string name, double value)
    {
        if (value > 0)
        {
            sums[name] = sums.GetValueOrDefault(name) + value;
        }
    }
}
