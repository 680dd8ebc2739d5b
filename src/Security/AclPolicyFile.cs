using Scheduler.Protocol.Text;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Scheduler.Security;

/// <summary>A mistake in an ACL file, with where it is.</summary>
public sealed class AclFileException(string message) : Exception(message)
{
}

/// <summary>
/// Reads an ACL file (YAML):
/// <code>
/// superusers: [admin]
/// groups:
///   eng-team: [alice, bob]
/// acls:
///   - principals: [alice, "group:eng-team"]
///     actions: [register_framework, reserve_resources, update_quota]
///     objects: [eng]
/// default: deny
/// </code>
/// Every mistake is reported at once as <c>FILE:LINE:COLUMN: what is wrong</c>.
/// </summary>
public static class AclPolicyFile
{
    private static readonly string[] TopKeys = ["superusers", "groups", "acls", "default"];
    private static readonly string[] RuleKeys = ["principals", "actions", "objects"];

    public static AclPolicy Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AclFileException($"{path}: cannot read the ACL file: {e.Message}");
        }
        return Parse(text, path);
    }

    public static AclPolicy Parse(string text, string source = "acls.yaml")
    {
        ArgumentNullException.ThrowIfNull(text);
        var errors = new List<string>();
        void Error(YamlNode? node, string message)
            => errors.Add(node is null ? $"{source}: {message}" : $"{source}:{node.Start.Line}:{node.Start.Column}: {message}");

        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw new AclFileException($"{source}:{e.Start.Line}:{e.Start.Column}: not valid YAML: {e.InnerException?.Message ?? e.Message}");
        }
        var superusers = new List<string>();
        var groups = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        var rules = new List<AclRule>();
        var defaultAllow = false;
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" })
        {
            throw new AclFileException($"{source}: the ACL file is empty; write at least 'acls:' (an empty policy denies everything but superusers)");
        }
        if (stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            throw new AclFileException($"{source}:1:1: the ACL file must be a mapping with keys {string.Join(", ", TopKeys)}");
        }
        foreach (var (keyNode, value) in root.Children)
        {
            var key = ((YamlScalarNode)keyNode).Value ?? "";
            switch (key)
            {
                case "superusers":
                    superusers.AddRange(Strings(value, "superusers", Error));
                    break;
                case "groups":
                    if (value is YamlMappingNode groupMap)
                    {
                        foreach (var (g, members) in groupMap.Children)
                        {
                            groups[((YamlScalarNode)g).Value ?? ""] = Strings(members, $"group '{g}'", Error);
                        }
                    }
                    else
                    {
                        Error(value, "groups must be a mapping of group name to a list of principals");
                    }
                    break;
                case "acls":
                    if (value is YamlSequenceNode list)
                    {
                        foreach (var item in list.Children)
                        {
                            if (ParseRule(item, Error) is { } rule)
                            {
                                rules.Add(rule);
                            }
                        }
                    }
                    else if (value is not YamlScalarNode { Value: null or "" })
                    {
                        Error(value, "acls must be a list of rules, each with principals, actions and objects");
                    }
                    break;
                case "default":
                    var d = (value as YamlScalarNode)?.Value;
                    if (d is "allow" or "deny")
                    {
                        defaultAllow = d == "allow";
                    }
                    else
                    {
                        Error(value, $"default must be 'allow' or 'deny', not '{d}'");
                    }
                    break;
                default:
                    Error(keyNode, Unknown("key", key, TopKeys));
                    break;
            }
        }
        foreach (var rule in rules)
        {
            foreach (var p in rule.Principals.Where(p => p.StartsWith("group:", StringComparison.Ordinal) && !groups.ContainsKey(p[6..])))
            {
                errors.Add($"{source}: principal '{p}' names a group that 'groups' does not define");
            }
        }
        if (errors.Count > 0)
        {
            throw new AclFileException(string.Join(Environment.NewLine, errors));
        }
        return new AclPolicy(superusers, groups, rules, defaultAllow);
    }

    private static AclRule? ParseRule(YamlNode node, Action<YamlNode?, string> error)
    {
        if (node is not YamlMappingNode map)
        {
            error(node, "each rule must be a mapping with principals, actions and objects");
            return null;
        }
        IReadOnlyList<string>? principals = null, objects = null;
        var actions = new List<AclAction>();
        var ok = true;
        foreach (var (keyNode, value) in map.Children)
        {
            var key = ((YamlScalarNode)keyNode).Value ?? "";
            switch (key)
            {
                case "principals":
                    principals = Strings(value, "principals", error);
                    break;
                case "objects":
                    objects = Strings(value, "objects", error);
                    break;
                case "actions":
                    foreach (var (name, at) in StringNodes(value, "actions", error))
                    {
                        if (AclActions.TryParse(name, out var action))
                        {
                            actions.Add(action);
                        }
                        else
                        {
                            error(at, Unknown("action", name, AclActions.Names));
                            ok = false;
                        }
                    }
                    break;
                default:
                    error(keyNode, Unknown("rule key", key, RuleKeys));
                    ok = false;
                    break;
            }
        }
        foreach (var (field, present) in new[] { ("principals", principals is { Count: > 0 }), ("actions", actions.Count > 0 || !ok), ("objects", objects is { Count: > 0 }) })
        {
            if (!present)
            {
                error(node, $"the rule has no {field}; add '{field}: [...]' ({(field == "objects" ? "'*' for every object" : field == "principals" ? "'*' for every authenticated principal" : "one of " + string.Join(", ", AclActions.Names))})");
                ok = false;
            }
        }
        return ok ? new AclRule(principals!, actions, objects!) : null;
    }

    private static List<string> Strings(YamlNode node, string what, Action<YamlNode?, string> error)
        => [.. StringNodes(node, what, error).Select(s => s.Value)];

    private static IEnumerable<(string Value, YamlNode Node)> StringNodes(YamlNode node, string what, Action<YamlNode?, string> error)
    {
        var items = node switch
        {
            YamlSequenceNode seq => seq.Children,
            YamlScalarNode { Value: not null and not "" } => [node],
            _ => null,
        };
        if (items is null)
        {
            error(node, $"{what} must be a list of names");
            yield break;
        }
        foreach (var item in items)
        {
            if (item is YamlScalarNode { Value: { Length: > 0 } v })
            {
                yield return (v, item);
            }
            else
            {
                error(item, $"{what}: each entry must be a non-empty name");
            }
        }
    }

    private static string Unknown(string what, string name, IEnumerable<string> known)
    {
        var closest = Suggestions.Closest(name, known);
        return closest is null
            ? $"unknown {what} '{name}'; known: {string.Join(", ", known)}"
            : $"unknown {what} '{name}'; did you mean '{closest}'?";
    }
}
