using System.Text;
using Sched.V1;

namespace Scheduler.Protocol.Resources;

/// <summary>
/// What makes two resources of one name the same kind of resource apart from their value: the
/// whole reservation (type, role, principal, labels, refinement chain) and the disk info
/// (persistent volume). Resources with equal identity keys merge when added; others never do.
/// </summary>
public static class ResourceIdentity
{
    /// <summary>
    /// A canonical text of the reservation and disk info: "" for unreserved resources without disk
    /// info; labels are sorted so that their order on the wire does not matter.
    /// </summary>
    public static string Key(Reservation? reservation, DiskInfo? disk)
    {
        if (reservation is null && disk is null)
        {
            return "";
        }

        var sb = new StringBuilder();
        AppendReservation(sb, reservation);
        sb.Append('\u0001');
        if (disk is not null)
        {
            sb.Append(disk);
        }

        return sb.ToString();
    }

    /// <summary>The identity key of <paramref name="resource"/> (see <see cref="Key(Reservation?, DiskInfo?)"/>).</summary>
    public static string Key(Resource resource)
    {
        ArgumentNullException.ThrowIfNull(resource);
        return Key(resource.Reservation, resource.Disk);
    }

    private static void AppendReservation(StringBuilder sb, Reservation? r)
    {
        if (r is null)
        {
            return;
        }

        sb.Append((int)r.Type).Append(':').Append(r.Role).Append(':').Append(r.Principal).Append(':');
        var first = true;
        foreach (var label in r.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).ThenBy(l => l.Value, StringComparer.Ordinal))
        {
            if (!first)
            {
                sb.Append(',');
            }

            sb.Append(label.Key).Append('=').Append(label.Value);
            first = false;
        }

        sb.Append('<');
        AppendReservation(sb, r.RefinedFrom);
    }
}
