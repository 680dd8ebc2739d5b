using System.CommandLine;
using Scheduler.Cli.Commands;

namespace Scheduler.Cli;

/// <summary>The <c>schedctl</c> command tree and its error handling.</summary>
public static class CliApp
{
    /// <summary>Parses and runs <paramref name="args"/>; returns the process exit code.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        output ??= Console.Out;
        error ??= Console.Error;

        // The supervisor mode takes its own arguments verbatim (it is started by the agent).
        if (args.Length >= 2 && args[0] == "agent" && args[1] == "supervise")
        {
            return await DaemonCommands.SuperviseAsync(args);
        }

        var root = BuildRoot();
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            await error.WriteLineAsync($"schedctl: {UnknownCommand(parse) ?? parse.Errors[0].Message} (see 'schedctl {CommandPath(parse)}--help')");
            return CliException.Usage;
        }
        try
        {
            var config = new InvocationConfiguration
            {
                Output = output,
                Error = error,
                EnableDefaultExceptionHandler = false,
                ProcessTerminationTimeout = TimeSpan.FromSeconds(30),
            };
            return await parse.InvokeAsync(config);
        }
        catch (CliException e)
        {
            await error.WriteLineAsync($"schedctl: {e.Message}");
            return e.ExitCode;
        }
        catch (OperationCanceledException)
        {
            await error.WriteLineAsync("schedctl: interrupted");
            return 130;
        }
        catch (Exception e)
        {
            await error.WriteLineAsync($"schedctl: unexpected error ({e.GetType().Name}): {e.Message}");
            if (Environment.GetEnvironmentVariable("SCHEDCTL_DEBUG") is "1")
            {
                await error.WriteLineAsync(e.ToString());
            }
            return CliException.Failure;
        }
    }

    /// <summary>The root command with every subcommand.</summary>
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("schedctl: run and use a Scheduler cluster (a two-level resource scheduler).");
        root.Options.Add(GlobalOptions.Master);
        root.Options.Add(GlobalOptions.Json);
        root.Options.Add(GlobalOptions.TlsCert);
        root.Options.Add(GlobalOptions.TlsKey);
        root.Options.Add(GlobalOptions.TlsCa);
        root.Options.Add(GlobalOptions.TokenFile);
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(DevCommand.Create());
        root.Subcommands.Add(DaemonCommands.CreateMaster());
        root.Subcommands.Add(DaemonCommands.CreateAgent());
        foreach (var command in ClusterCommands.Create())
        {
            root.Subcommands.Add(command);
        }
        foreach (var command in ReservationCommands.Create())
        {
            root.Subcommands.Add(command);
        }
        foreach (var command in MaintenanceCommands.Create().Concat(InspectCommands.Create()))
        {
            root.Subcommands.Add(command);
        }
        root.Subcommands.Add(SecretCommands.Create());
        foreach (var command in SecurityCommands.Create())
        {
            root.Subcommands.Add(command);
        }
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(LogsCommand.Create());
        root.Subcommands.Add(KillCommand.Create());
        root.Subcommands.Add(Jobs.JobCommands.Create());
        root.Subcommands.Add(Jobs.JobsDaemonCommand.Create());
        return root;
    }

    /// <summary>
    /// "unknown command 'X'; did you mean 'Y'?" when the first word after a command that takes
    /// subcommands is none of them (System.CommandLine reports that as "Required command was not
    /// provided", which misleads).
    /// </summary>
    private static string? UnknownCommand(ParseResult parse)
    {
        var command = parse.CommandResult.Command;
        if (command.Subcommands.Count == 0 || parse.UnmatchedTokens.Count == 0)
        {
            return null;
        }
        var word = parse.UnmatchedTokens[0];
        if (word.StartsWith('-'))
        {
            return null;
        }
        var names = command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name).ToList();
        var closest = Scheduler.Protocol.Text.Suggestions.Closest(word, names);
        var where = command is RootCommand ? "schedctl" : $"schedctl {CommandPath(parse).TrimEnd()}";
        var suggestion = closest is not null ? $"did you mean '{closest}'? " : "";
        return $"unknown command '{word}' for {where}; {suggestion}the commands are: {string.Join(", ", names.Order(StringComparer.Ordinal))}";
    }

    private static string CommandPath(ParseResult parse)
    {
        var names = new List<string>();
        for (var c = parse.CommandResult; c is not null; c = c.Parent as System.CommandLine.Parsing.CommandResult)
        {
            if (c.Command is not RootCommand)
            {
                names.Insert(0, c.Command.Name);
            }
        }
        return names.Count == 0 ? "" : string.Join(' ', names) + " ";
    }
}
