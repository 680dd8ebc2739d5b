using Sched.V1;
using Scheduler.Master.State;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Loop;

/// <summary>
/// Quota limits bound what a role (with its subroles) holds: the resources of its live tasks plus
/// its outstanding offers. The allocator keeps new grants within the limit; these methods keep the
/// rest of the master honest when the limit moves under resources already handed out: a lower
/// limit rescinds the offers above it, refuses to go below what tasks already hold unless forced,
/// and Accept checks the limit again for offers that were in flight. Tasks an agent reports when
/// it re-registers after a failover rescind the offers they take a role above its limit.
/// </summary>
public sealed partial class MasterLoop
{
    /// <summary>Throws FAILED_PRECONDITION when a new limit is below what the role's live tasks
    /// already hold (the caller skips this with <c>force</c>). Changes nothing.</summary>
    private void RefuseLimitsBelowHeld(IEnumerable<QuotaInfo> quotas)
    {
        foreach (var q in quotas.Where(q => q.Limits.Count > 0))
        {
            var held = HeldByRole(q.Role);
            foreach (var limit in q.Limits)
            {
                var has = held.GetValueOrDefault(limit.Name);
                if (has > limit.Scalar + 1e-9)
                {
                    throw MasterErrors.FailedPrecondition(
                        $"quota of role '{q.Role}': the limit of {limit.Name} ({limit.Scalar:0.###}) is below the {has:0.###} its running tasks already hold; set a limit of at least {has:0.###}, kill tasks first, or pass force to set it anyway (no new tasks then until usage falls under it)");
                }
            }
        }
    }

    /// <summary>Rescinds offers of each role with a limit (and its subroles) until what the role
    /// holds plus what it is offered is within the limit again (after the limit was lowered, or
    /// after an agent returned with tasks the master did not know).</summary>
    private void EnforceQuotaLimits(IEnumerable<QuotaInfo> quotas)
    {
        foreach (var q in quotas.Where(q => q.Limits.Count > 0))
        {
            var used = HeldByRole(q.Role);
            var offers = _offers.All.Where(o => InRoleTree(o.Offer.Role, q.Role)).ToList();
            foreach (var offer in offers)
            {
                AddScalars(used, offer.Offer.Resources, 1);
            }
            // Largest offers first: fewest rescinds to get back under the limit.
            foreach (var offer in offers.OrderByDescending(o => o.Offer.Resources.Where(r => r.ValueCase == Resource.ValueOneofCase.Scalar).Sum(r => r.Scalar)))
            {
                if (Overshoot(q, used) is not { } over)
                {
                    break;
                }
                if (!offer.Offer.Resources.Any(r => r.Name == over && r.ValueCase == Resource.ValueOneofCase.Scalar && r.Scalar > 0))
                {
                    continue;
                }
                AddScalars(used, offer.Offer.Resources, -1);
                RescindOffer(offer, $"rescinded: role '{q.Role}' would exceed its quota limit of {over}");
            }
        }
    }

    /// <summary>Why a task of <paramref name="role"/> must not launch: it would take the role, or a
    /// role above it, over a quota limit. <paramref name="launched"/> holds what earlier tasks of
    /// the same call took, per role with a limit; on success the task is added to it.</summary>
    private string? QuotaLimitProblem(string role, TaskInfo task, Dictionary<string, Dictionary<string, double>> launched)
    {
        if (_quotaBook.IsEmpty)
        {
            return null;
        }
        var limited = _quotaBook.LimitsOver(role);
        foreach (var q in limited)
        {
            if (!launched.TryGetValue(q.Role, out var used))
            {
                launched[q.Role] = used = HeldByRole(q.Role);
            }
            foreach (var limit in q.Limits)
            {
                var need = task.Resources.Where(r => r.Name == limit.Name && r.ValueCase == Resource.ValueOneofCase.Scalar).Sum(r => r.Scalar);
                var has = used.GetValueOrDefault(limit.Name);
                if (need > 0 && has + need > limit.Scalar + 1e-9)
                {
                    return $"task '{task.TaskId}' would take role '{q.Role}' over its quota limit of {limit.Name} ({limit.Scalar:0.###}: {has:0.###} held, {need:0.###} asked); wait until the role's tasks free some, or ask the operator to raise the limit";
                }
            }
        }
        foreach (var q in limited)
        {
            AddScalars(launched[q.Role], task.Resources, 1);
        }
        return null;
    }

    /// <summary>The first resource over its limit in <paramref name="used"/>, if any.</summary>
    private static string? Overshoot(QuotaInfo quota, Dictionary<string, double> used) =>
        quota.Limits.FirstOrDefault(l => used.GetValueOrDefault(l.Name) > l.Scalar + 1e-9)?.Name;

    /// <summary>Scalars held by the live tasks of <paramref name="role"/> and its subroles. Walks the
    /// tasks of frameworks subscribed to a role of that tree (tasks of a role are launched only by
    /// its frameworks), so it costs what those frameworks run, not the whole cluster. Tasks of a
    /// framework that has since left every role of the tree are not counted.</summary>
    private Dictionary<string, double> HeldByRole(string role)
    {
        var sums = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var fw in _frameworks.All)
        {
            if (!fw.Info.Roles.Any(r => InRoleTree(r, role)))
            {
                continue;
            }
            foreach (var task in _tasks.LiveOf(fw.Id))
            {
                if (InRoleTree(task.Role, role))
                {
                    AddScalars(sums, task.Resources, 1);
                }
            }
        }
        return sums;
    }

    private static bool InRoleTree(string role, string root) =>
        role == root || role.Length > root.Length && role[root.Length] == '/' && role.StartsWith(root, StringComparison.Ordinal);

    private static void AddScalars(Dictionary<string, double> sums, IEnumerable<Resource> resources, int sign)
    {
        foreach (var r in resources)
        {
            if (r.ValueCase == Resource.ValueOneofCase.Scalar)
            {
                sums[r.Name] = sums.GetValueOrDefault(r.Name) + sign * r.Scalar;
            }
        }
    }
}
