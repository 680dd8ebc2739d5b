using System.Globalization;
using System.Text.RegularExpressions;
using Sched.V1;
using Scheduler.Jobs.Spec;
using Scheduler.Jobs.State;

namespace Scheduler.Jobs.Engine;

/// <summary>Placement constraints on agent attributes: whether an offer's agent may take one more
/// instance of a job, and if not, why in words an operator can act on.</summary>
internal static class Placement
{
    /// <summary>The offer's attributes as text, plus <c>hostname</c>.</summary>
    public static Dictionary<string, string> AttributesOf(Offer offer)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal) { ["hostname"] = offer.Hostname };
        foreach (var a in offer.Attributes)
        {
            map[a.Name] = a.ValueCase switch
            {
                Sched.V1.Attribute.ValueOneofCase.Text => a.Text,
                Sched.V1.Attribute.ValueOneofCase.Scalar => a.Scalar.ToString(CultureInfo.InvariantCulture),
                Sched.V1.Attribute.ValueOneofCase.Set => string.Join(",", a.Set.Items),
                _ => a.ToString(),
            };
        }
        return map;
    }

    /// <summary>Null when an agent with <paramref name="attributes"/> may take one more instance
    /// beside the <paramref name="placed"/> ones; otherwise the first constraint it breaks.</summary>
    public static string? Refusal(JobSpec spec, IEnumerable<InstanceRecord> placed, IReadOnlyDictionary<string, string> attributes)
    {
        var live = placed.ToList();
        foreach (var c in spec.Constraints)
        {
            attributes.TryGetValue(c.Attribute, out var value);
            var op = YamlFields.Snake(c.Operator.ToString());
            if (value is null)
            {
                return $"{c.Attribute} {op}: the agent has no attribute {c.Attribute}";
            }
            var same = live.Count(i => i.Attributes.TryGetValue(c.Attribute, out var v) && v == value);
            switch (c.Operator)
            {
                case ConstraintOperator.Unique when same > 0:
                    return $"{c.Attribute} unique: {c.Attribute} {value} already has an instance";
                case ConstraintOperator.MaxPer when same >= int.Parse(c.Value!, CultureInfo.InvariantCulture):
                    return $"{c.Attribute} max_per {c.Value}: {c.Attribute} {value} already has {same}";
                case ConstraintOperator.Like when !Regex.IsMatch(value, $"^(?:{c.Value})$", RegexOptions.None, TimeSpan.FromSeconds(1)):
                    return $"{c.Attribute} like {c.Value}: the agent's {c.Attribute} is {value}";
                case ConstraintOperator.Unlike when Regex.IsMatch(value, $"^(?:{c.Value})$", RegexOptions.None, TimeSpan.FromSeconds(1)):
                    return $"{c.Attribute} unlike {c.Value}: the agent's {c.Attribute} is {value}";
                case ConstraintOperator.Cluster:
                    var want = c.Value ?? live.Select(i => i.Attributes.GetValueOrDefault(c.Attribute)).FirstOrDefault(v => v is not null);
                    if (want is not null && want != value)
                    {
                        return $"{c.Attribute} cluster: instances run on {c.Attribute} {want}, the agent is on {value}";
                    }
                    break;
            }
        }
        return null;
    }

    /// <summary>Why no agent seen can take an instance because of a spreading constraint, e.g.
    /// "no agent satisfies rack unique: 3 racks, 4 instances"; null when no such constraint binds.</summary>
    public static string? SpreadShortfall(JobSpec spec, IEnumerable<IReadOnlyDictionary<string, string>> knownAgents, int wanted)
    {
        var agents = knownAgents.ToList();
        foreach (var c in spec.Constraints.Where(c => c.Operator is ConstraintOperator.Unique or ConstraintOperator.MaxPer))
        {
            var values = agents.Select(a => a.GetValueOrDefault(c.Attribute)).Where(v => v is not null).Distinct().Count();
            var perValue = c.Operator == ConstraintOperator.Unique ? 1 : int.Parse(c.Value!, CultureInfo.InvariantCulture);
            if (values * perValue < wanted)
            {
                var op = c.Operator == ConstraintOperator.Unique ? "unique" : $"max_per {c.Value}";
                return $"no agent satisfies {c.Attribute} {op}: {values} {Plural(c.Attribute, values)}, {wanted} instances; add agents with other {c.Attribute} values or relax the constraint";
            }
        }
        return null;
    }

    private static string Plural(string word, int n) => n == 1 ? word : word.EndsWith('s') ? word + "es" : word + "s";
}
