using System.Globalization;
using Sched.V1;

namespace Scheduler.Allocation.Internal;

/// <summary>Evaluates <see cref="OfferConstraint"/>s on agent attributes.</summary>
internal static class ConstraintEvaluator
{
    /// <summary>Whether the agent satisfies every constraint that applies to <paramref name="role"/>.</summary>
    public static bool Satisfies(AgentEntry agent, IReadOnlyList<OfferConstraint> constraints, string role)
    {
        foreach (var c in constraints)
        {
            if (c.Role.Length > 0 && c.Role != role)
            {
                continue;
            }

            var attribute = agent.FindAttribute(c.Attribute);
            var ok = c.Op switch
            {
                OfferConstraint.Types.Op.Exists => attribute is not null,
                OfferConstraint.Types.Op.NotExists => attribute is null,
                OfferConstraint.Types.Op.Equals => attribute is not null && Matches(attribute, c.Value),
                OfferConstraint.Types.Op.NotEquals => attribute is null || !Matches(attribute, c.Value),
                _ => false,
            };
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }

    private static bool Matches(Sched.V1.Attribute attribute, string value) => attribute.ValueCase switch
    {
        Sched.V1.Attribute.ValueOneofCase.Text => attribute.Text == value,
        Sched.V1.Attribute.ValueOneofCase.Scalar =>
            attribute.Scalar.ToString(CultureInfo.InvariantCulture) == value
            || (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d == attribute.Scalar),
        Sched.V1.Attribute.ValueOneofCase.Set => attribute.Set.Items.Contains(value),
        Sched.V1.Attribute.ValueOneofCase.Ranges =>
            ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            && attribute.Ranges.Range.Any(r => r.Begin <= n && n <= r.End),
        _ => false,
    };

    /// <summary>Null when valid, else what is wrong with the constraint.</summary>
    public static string? Validate(OfferConstraint c)
    {
        if (string.IsNullOrEmpty(c.Attribute))
        {
            return "an offer constraint has no attribute name";
        }

        return c.Op switch
        {
            OfferConstraint.Types.Op.Unspecified => $"the constraint on '{c.Attribute}' has no op; use EXISTS, NOT_EXISTS, EQUALS or NOT_EQUALS",
            OfferConstraint.Types.Op.Equals or OfferConstraint.Types.Op.NotEquals when c.Value.Length == 0 =>
                $"the {c.Op} constraint on '{c.Attribute}' needs a value",
            _ => null,
        };
    }
}
