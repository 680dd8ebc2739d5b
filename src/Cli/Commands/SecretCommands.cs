using System.CommandLine;
using Google.Protobuf;
using Sched.V1;
using Scheduler.Protocol;
using Spectre.Console;

namespace Scheduler.Cli.Commands;

/// <summary><c>schedctl secret set|list|rm</c>: role secrets, values from stdin or a file, never the command line.</summary>
public static class SecretCommands
{
    private static readonly Argument<string> Role = new("role") { Description = "The role the secret belongs to, e.g. 'eng/web'." };
    private static readonly Argument<string> Name = new("name") { Description = "The secret's name (letters, digits, '.', '_', '-')." };
    private static readonly Argument<string?> ListRole = new("role") { Description = "Only this role's secrets.", Arity = ArgumentArity.ZeroOrOne };
    private static readonly Option<System.IO.FileInfo?> FromFile = new("--from-file") { Description = "Read the value from this file (default: standard input). Never give a value on the command line." };

    public static Command Create()
    {
        var secret = new Command("secret", "Secrets of a role, given to its tasks as environment variables or files (docs/security.md).");
        var set = new Command("set", "Store (or replace) a secret; the value comes from stdin or --from-file.");
        set.Arguments.Add(Role);
        set.Arguments.Add(Name);
        set.Options.Add(FromFile);
        set.SetAction((p, ct) => ClusterCommands.RunAsync(p, SetAsync, ct));
        var list = new Command("list", "List secrets (names, sizes, when set; never values).");
        list.Arguments.Add(ListRole);
        list.SetAction((p, ct) => ClusterCommands.RunAsync(p, ListAsync, ct));
        var rm = new Command("rm", "Remove a secret (running tasks keep what they were given).");
        rm.Arguments.Add(Role);
        rm.Arguments.Add(Name);
        rm.SetAction((p, ct) => ClusterCommands.RunAsync(p, RemoveAsync, ct));
        secret.Subcommands.Add(set);
        secret.Subcommands.Add(list);
        secret.Subcommands.Add(rm);
        return secret;
    }

    private static async Task<int> SetAsync(ClusterCommands.Context c)
    {
        var role = c.Parse.GetValue(Role)!;
        var name = c.Parse.GetValue(Name)!;
        byte[] value;
        if (c.Parse.GetValue(FromFile) is { } file)
        {
            if (!file.Exists)
            {
                throw CliException.BadInput($"--from-file: no file {file.FullName}");
            }
            value = await File.ReadAllBytesAsync(file.FullName, c.Cancellation);
        }
        else
        {
            if (!Console.IsInputRedirected)
            {
                await Console.Error.WriteLineAsync("reading the secret from standard input (end with Ctrl-D)…");
            }
            using var buffer = new MemoryStream();
            await Console.OpenStandardInput().CopyToAsync(buffer, c.Cancellation);
            value = buffer.ToArray();
            // A value typed or piped with echo ends with one newline that is not part of it.
            if (value.Length > 0 && value[^1] == '\n')
            {
                value = value[..^(value.Length > 1 && value[^2] == '\r' ? 2 : 1)];
            }
        }
        if (value.Length == 0)
        {
            throw CliException.BadInput("the secret's value is empty: pipe it on standard input or give --from-file");
        }
        await c.Connection.CallAsync(OperatorMethods.SetSecret, new SetSecretRequest { Role = role, Name = name, Value = ByteString.CopyFrom(value) }, c.Cancellation);
        await c.Out.WriteLineAsync($"secret '{name}' of role '{role}' stored ({value.Length} bytes)");
        return 0;
    }

    private static async Task<int> ListAsync(ClusterCommands.Context c)
    {
        var response = await c.Connection.CallAsync(OperatorMethods.ListSecrets, new ListSecretsRequest { Role = c.Parse.GetValue(ListRole) ?? "" }, c.Cancellation);
        if (c.Print(response))
        {
            return 0;
        }
        var table = new Table().AddColumns("ROLE", "NAME", "BYTES", "SET");
        foreach (var s in response.Secrets)
        {
            table.AddRow(Markup.Escape(s.Role), Markup.Escape(s.Name), s.Size.ToString(System.Globalization.CultureInfo.InvariantCulture),
                DateTimeOffset.FromUnixTimeMilliseconds((long)(s.UpdatedTime * 1000)).ToString("yyyy-MM-dd HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture));
        }
        c.Render(table, response.Secrets.Count, "secrets");
        return 0;
    }

    private static async Task<int> RemoveAsync(ClusterCommands.Context c)
    {
        var role = c.Parse.GetValue(Role)!;
        var name = c.Parse.GetValue(Name)!;
        await c.Connection.CallAsync(OperatorMethods.DeleteSecret, new DeleteSecretRequest { Role = role, Name = name }, c.Cancellation);
        await c.Out.WriteLineAsync($"secret '{name}' of role '{role}' removed");
        return 0;
    }
}
