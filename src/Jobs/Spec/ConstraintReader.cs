using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace Scheduler.Jobs.Spec;

/// <summary>Reads <c>constraints</c>: a list of <c>{attribute, operator, value}</c>.</summary>
internal static class ConstraintReader
{
    public static IReadOnlyList<ConstraintSpec> Read(string file, YamlFields f, List<JobFileError> errors)
    {
        var list = new List<ConstraintSpec>();
        if (f.Get("constraints") is not { } node)
        {
            return list;
        }
        if (node is not YamlSequenceNode seq)
        {
            f.Error(node, "constraints must be a list, e.g. constraints: [{attribute: rack, operator: unique}]");
            return list;
        }
        foreach (var item in seq)
        {
            if (YamlFields.Open(file, "constraints[]", item, errors) is not { } c)
            {
                continue;
            }
            var attribute = c.String("attribute", required: true, example: "rack");
            var op = c.Enum<ConstraintOperator>("operator");
            var value = c.String("value");
            c.RefuseUnknown();
            if (op is null)
            {
                if (!c.Has("operator"))
                {
                    c.Error(item, "missing field 'constraints[].operator'; write one of unique | cluster | like | unlike | max_per");
                }
                continue;
            }
            if (op is ConstraintOperator.Like or ConstraintOperator.Unlike)
            {
                if (value is null)
                {
                    c.Error(item, $"operator {YamlFields.Snake(op.Value.ToString())} needs a value (a regular expression), e.g. value: 'r[12]'");
                    continue;
                }
                try
                {
                    _ = new Regex(value, RegexOptions.None, TimeSpan.FromSeconds(1));
                }
                catch (ArgumentException e)
                {
                    c.Error(c.Get("value")!, $"value '{value}' is not a regular expression ({e.Message})");
                }
            }
            if (op == ConstraintOperator.MaxPer && (value is null || !int.TryParse(value, out var n) || n < 1))
            {
                c.Error(item, "operator max_per needs a value: the most instances per attribute value, e.g. value: '2'");
                continue;
            }
            if (op == ConstraintOperator.Unique && value is not null)
            {
                c.Error(c.Get("value")!, "operator unique takes no value; remove it");
            }
            if (attribute is not null)
            {
                list.Add(new ConstraintSpec(attribute, op.Value, value));
            }
        }
        return list;
    }
}
