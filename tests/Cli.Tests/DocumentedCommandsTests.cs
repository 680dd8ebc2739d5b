using System.Text.RegularExpressions;
using Xunit;

namespace Scheduler.Cli.Tests;

/// <summary>
/// Every <c>schedctl</c> command that README.md and docs/ show exists, with the options shown:
/// docs once promised `schedctl health` and a drain command that were not there. Placeholders
/// (AGENT, ID, …) stand as they are; `a|b` alternatives are each checked; `[optional]` parts are
/// checked with and without; `…` is left out.
/// </summary>
public sealed partial class DocumentedCommandsTests
{
    public static TheoryData<string, string> Commands()
    {
        var data = new TheoryData<string, string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (file, text) in Documents())
        {
            foreach (var command in Extract(text).SelectMany(Expand))
            {
                if (seen.Add(command))
                {
                    data.Add(file, command);
                }
            }
        }
        return data;
    }

    [Fact]
    public void The_documents_show_the_operator_commands()
    {
        var all = Commands().Select(row => (string)row[1]).ToList();
        Assert.True(all.Count >= 30, $"only {all.Count} commands found in the docs; is the extraction broken?");
        foreach (var expected in new[] { "health", "drain AGENT", "reactivate AGENT", "describe task ID", "events", "run", "logs TASK" })
        {
            Assert.Contains(all, c => c.StartsWith(expected, StringComparison.Ordinal));
        }
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void A_documented_command_parses(string file, string command)
    {
        // "…" elides arguments: what it leaves out may be required.
        var elided = command.Contains('…', StringComparison.Ordinal);
        // A shell redirection ('> admin.token', '< password.txt') is the shell's, not schedctl's.
        command = Regex.Replace(command, """\s+(?:\d?>>?|<)\s*\S+""", "");
        var args = Regex.Matches(command, """'[^']*'|"[^"]*"|\S+""").Select(m => m.Value.Trim('\'', '"')).Where(a => a != "…")
            .Select(a => a == "N" ? "2" : a) // the number placeholder
            .ToArray();
        var parse = CliApp.BuildRoot().Parse(args);
        var errors = parse.Errors.Select(e => e.Message).Where(m => !(elided && m.Contains("required", StringComparison.OrdinalIgnoreCase))).ToList();
        Assert.True(errors.Count == 0, $"{file}: 'schedctl {command}': {string.Join("; ", errors)}");
    }

    private static IEnumerable<(string File, string Text)> Documents()
    {
        var root = RepoRoot();
        var files = new[] { Path.Combine(root, "README.md") }
            .Concat(Directory.EnumerateFiles(Path.Combine(root, "docs"), "*.md"))
            .Concat(Directory.EnumerateFiles(Path.Combine(root, "samples"), "README.md", SearchOption.AllDirectories));
        foreach (var file in files.Order(StringComparer.Ordinal))
        {
            yield return (Path.GetRelativePath(root, file), File.ReadAllText(file));
        }
    }

    /// <summary>Commands in code blocks (lines, with `\` continuations) and in inline code spans.</summary>
    internal static IEnumerable<string> Extract(string markdown)
    {
        var joined = markdown.Replace("\\\n", " ", StringComparison.Ordinal);
        foreach (Match m in CodeLine().Matches(joined))
        {
            yield return Clean(m.Groups["args"].Value);
        }
        foreach (Match m in InlineSpan().Matches(joined))
        {
            // A command named in prose may leave out its required options: taken as elided.
            yield return Clean(m.Groups["args"].Value) + " …";
        }
    }

    private static string Clean(string args)
    {
        var hash = args.IndexOf(" #", StringComparison.Ordinal);
        if (hash >= 0)
        {
            args = args[..hash];
        }
        args = args.Replace("…", " … ", StringComparison.Ordinal).Replace("&", " ", StringComparison.Ordinal);
        return Regex.Replace(args, @"\s+", " ").Trim();
    }

    /// <summary>`a|b` words become one command each; `[x]` groups are taken with and without.</summary>
    internal static IEnumerable<string> Expand(string command)
    {
        var optional = Regex.Match(command, @"\[([^\[\]]*)\]");
        if (optional.Success)
        {
            var without = command.Remove(optional.Index, optional.Length);
            var with = command.Remove(optional.Index, optional.Length).Insert(optional.Index, optional.Groups[1].Value);
            return Expand(Regex.Replace(without, @"\s+", " ").Trim()).Concat(Expand(with));
        }
        var words = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var alternative = Array.FindIndex(words, w => w.Contains('|', StringComparison.Ordinal) && !w.StartsWith('\'') && !w.StartsWith('"'));
        if (alternative >= 0)
        {
            return words[alternative].Split('|').SelectMany(choice =>
            {
                var copy = (string[])words.Clone();
                copy[alternative] = choice;
                return Expand(string.Join(' ', copy));
            });
        }
        return command.Length == 0 ? [] : [command];
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Scheduler.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("cannot find the repository root (Scheduler.sln) above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"^\s*(?:\$\s*)?(?:schedctl|dotnet run --project src/Cli --)\s+(?<args>[^\n`]*)$", RegexOptions.Multiline)]
    private static partial Regex CodeLine();

    [GeneratedRegex(@"`(?:schedctl|dotnet run --project src/Cli --)\s+(?<args>[^`\n]*)`")]
    private static partial Regex InlineSpan();
}
