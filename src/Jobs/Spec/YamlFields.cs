using System.Globalization;
using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace Scheduler.Jobs.Spec;

/// <summary>
/// Reads the fields of one YAML mapping, each with its expected type, collecting errors with
/// positions instead of throwing, so one pass reports everything wrong in a file. Fields not read
/// are reported as unknown by <see cref="RefuseUnknown"/>, with the closest known name.
/// </summary>
internal sealed partial class YamlFields
{
    private readonly string _file;
    private readonly string _path;
    private readonly YamlMappingNode _map;
    private readonly List<JobFileError> _errors;
    private readonly List<string> _known = [];

    public YamlFields(string file, string path, YamlMappingNode map, List<JobFileError> errors)
    {
        _file = file;
        _path = path;
        _map = map;
        _errors = errors;
    }

    public YamlMappingNode Node => _map;

    /// <summary>Opens <paramref name="node"/> as a mapping, or records an error and returns null.</summary>
    public static YamlFields? Open(string file, string path, YamlNode node, List<JobFileError> errors)
    {
        if (node is YamlMappingNode map)
        {
            return new YamlFields(file, path, map, errors);
        }
        errors.Add(At(file, node, $"{Describe(path)} must be a mapping of fields (key: value), not {Kind(node)}"));
        return null;
    }

    public void Error(YamlNode node, string message) => _errors.Add(At(_file, node, message));

    public YamlNode? Get(string key)
    {
        _known.Add(key);
        foreach (var (k, v) in _map.Children)
        {
            if (k is YamlScalarNode s && s.Value == key)
            {
                return v;
            }
        }
        return null;
    }

    public bool Has(string key) => _map.Children.Keys.Any(k => k is YamlScalarNode s && s.Value == key);

    /// <summary>The key node of <paramref name="key"/> (for errors about a field that is present).</summary>
    public YamlNode KeyNode(string key) => _map.Children.Keys.First(k => k is YamlScalarNode s && s.Value == key);

    public string Field(string key) => _path.Length == 0 ? key : $"{_path}.{key}";

    public string? String(string key, bool required = false, string? example = null)
    {
        var node = Get(key);
        if (node is null)
        {
            if (required)
            {
                _errors.Add(At(_file, _map, $"missing field '{Field(key)}'{(example is null ? "" : $"; write e.g. {key}: {example}")}"));
            }
            return null;
        }
        if (node is YamlScalarNode { Value: { } value } && !IsNull(node))
        {
            return value;
        }
        Error(node, $"{Field(key)} must be a string{(example is null ? "" : $", e.g. {key}: {example}")}, not {Kind(node)}");
        return null;
    }

    public int? Int(string key, int min, int max)
    {
        var node = Get(key);
        if (node is null)
        {
            return null;
        }
        if (node is YamlScalarNode { Value: { } v } && int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n))
        {
            if (n < min || n > max)
            {
                Error(node, $"{Field(key)} is {n}; write a whole number from {min} to {max}");
                return null;
            }
            return n;
        }
        Error(node, $"{Field(key)} must be a whole number from {min} to {max}, not {Show(node)}");
        return null;
    }

    public double? Double(string key, double min, double max, string unit)
    {
        var node = Get(key);
        if (node is null)
        {
            return null;
        }
        if (node is YamlScalarNode { Value: { } v } && double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d))
        {
            if (d < min || d > max)
            {
                Error(node, $"{Field(key)} is {d.ToString(CultureInfo.InvariantCulture)}; write a number of {unit} from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}");
                return null;
            }
            return d;
        }
        Error(node, $"{Field(key)} must be a number of {unit}, not {Show(node)}");
        return null;
    }

    public bool? Bool(string key)
    {
        var node = Get(key);
        if (node is null)
        {
            return null;
        }
        if (node is YamlScalarNode { Value: "true" or "false" } s)
        {
            return s.Value == "true";
        }
        Error(node, $"{Field(key)} must be true or false, not {Show(node)}");
        return null;
    }

    /// <summary>A duration: <c>30s</c>, <c>5m</c>, <c>1h30m</c>, <c>250ms</c>, <c>2d</c>, or a number of seconds.</summary>
    public TimeSpan? Duration(string key, TimeSpan? min = null)
    {
        var node = Get(key);
        if (node is null)
        {
            return null;
        }
        if (node is YamlScalarNode { Value: { } v } && TryParseDuration(v, out var d))
        {
            if (d < (min ?? TimeSpan.Zero))
            {
                Error(node, $"{Field(key)} is {v}; write at least {Format(min ?? TimeSpan.Zero)}");
                return null;
            }
            return d;
        }
        Error(node, $"{Field(key)} must be a duration such as 30s, 5m, 1h30m or 250ms, not {Show(node)}");
        return null;
    }

    public T? Enum<T>(string key)
        where T : struct, System.Enum
    {
        var node = Get(key);
        if (node is null)
        {
            return null;
        }
        var names = System.Enum.GetNames<T>().Select(Snake).ToList();
        if (node is YamlScalarNode { Value: { } v })
        {
            var i = names.IndexOf(v);
            if (i >= 0)
            {
                return System.Enum.GetValues<T>()[i];
            }
        }
        Error(node, $"{Field(key)} must be one of {string.Join(" | ", names)}, not {Show(node)}");
        return null;
    }

    public IReadOnlyList<string>? StringList(string key)
    {
        var node = Get(key);
        if (node is null)
        {
            return null;
        }
        if (node is YamlSequenceNode seq)
        {
            var list = new List<string>();
            foreach (var item in seq)
            {
                if (item is YamlScalarNode { Value: { } s } && !IsNull(item))
                {
                    list.Add(s);
                }
                else
                {
                    Error(item, $"each item of {Field(key)} must be a string, not {Kind(item)}");
                }
            }
            return list;
        }
        Error(node, $"{Field(key)} must be a list, e.g. {key}: [a, b]");
        return null;
    }

    /// <summary>Records an error for every field of the mapping that was not read.</summary>
    public void RefuseUnknown()
    {
        foreach (var key in _map.Children.Keys)
        {
            var name = (key as YamlScalarNode)?.Value ?? "";
            if (_known.Contains(name))
            {
                continue;
            }
            var closest = Scheduler.Protocol.Text.Suggestions.Closest(name, _known);
            var hint = closest is not null ? $"did you mean '{closest}'? " : "";
            Error(key, $"unknown field '{Field(name)}'; {hint}the fields of {Describe(_path)} are: {string.Join(", ", _known.Distinct().Order(StringComparer.Ordinal))}");
        }
    }

    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        text = text.Trim();
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && double.IsFinite(seconds) && seconds >= 0)
        {
            duration = TimeSpan.FromSeconds(seconds);
            return true;
        }
        var match = DurationPattern().Match(text);
        if (!match.Success || text.Length == 0)
        {
            return false;
        }
        foreach (Capture part in match.Groups["part"].Captures)
        {
            var unitStart = part.Value.IndexOfAny(['m', 's', 'h', 'd']);
            var number = double.Parse(part.Value[..unitStart], CultureInfo.InvariantCulture);
            duration += part.Value[unitStart..] switch
            {
                "ms" => TimeSpan.FromMilliseconds(number),
                "s" => TimeSpan.FromSeconds(number),
                "m" => TimeSpan.FromMinutes(number),
                "h" => TimeSpan.FromHours(number),
                _ => TimeSpan.FromDays(number),
            };
        }
        return true;
    }

    public static string Format(TimeSpan d) => d.TotalSeconds < 1 && d > TimeSpan.Zero
        ? $"{d.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)}ms"
        : $"{d.TotalSeconds.ToString(CultureInfo.InvariantCulture)}s";

    public static string Snake(string pascal) => SnakeBoundary().Replace(pascal, "$1_$2").ToLowerInvariant();

    public static JobFileError At(string file, YamlNode node, string message) => new(file, node.Start.Line, node.Start.Column, message);

    private static bool IsNull(YamlNode node) => node is YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain, Value: "" or "~" or "null" };

    private static string Describe(string path) => path.Length == 0 ? "a job file" : $"'{path}'";

    private static string Kind(YamlNode node) => node switch
    {
        YamlMappingNode => "a mapping",
        YamlSequenceNode => "a list",
        _ when IsNull(node) => "empty",
        _ => $"'{((YamlScalarNode)node).Value}'",
    };

    private static string Show(YamlNode node) => Kind(node);

    [GeneratedRegex(@"^(?<part>\d+(\.\d+)?(ms|s|m|h|d))+$")]
    private static partial Regex DurationPattern();

    [GeneratedRegex("([a-z])([A-Z])")]
    private static partial Regex SnakeBoundary();
}
