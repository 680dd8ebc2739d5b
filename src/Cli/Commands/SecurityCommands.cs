using System.CommandLine;
using Sched.V1;
using Scheduler.Protocol;
using Scheduler.Security;

namespace Scheduler.Cli.Commands;

/// <summary><c>schedctl token create</c>, <c>whoami</c>, <c>teardown</c>.</summary>
public static class SecurityCommands
{
    private static readonly Option<string> Principal = new("--principal") { Description = "The principal the token names (a framework's, an operator's, an agent's).", Required = true };
    private static readonly Option<string> Ttl = new("--ttl") { Description = "How long the token is valid, e.g. 12h, 30d (default 30d).", DefaultValueFactory = _ => "30d" };
    private static readonly Option<string?> Key = new("--key") { Description = "Sign with this token key file (a master's --token-key) instead of asking a master: for the first operator token of a new cluster." };
    private static readonly Argument<System.IO.FileInfo> AclFile = new("file") { Description = "An ACL file (YAML; docs/security.md)." };
    private static readonly Argument<string> AclPrincipal = new("principal") { Description = "The principal (a name)." };
    private static readonly Argument<string> AclActionName = new("action") { Description = "The action, e.g. update_quota." };
    private static readonly Argument<string> AclObject = new("object") { Description = "The object: a role, an OS user, a principal or an agent id, as the action takes." };
    private static readonly Argument<string> FrameworkId = new("framework") { Description = "The framework id (schedctl frameworks)." };

    public static IEnumerable<Command> Create()
    {
        var token = new Command("token", "Bearer tokens.");
        var create = new Command("create", "Issue a token for a principal (operators only); prints the token.");
        create.Options.Add(Principal);
        create.Options.Add(Ttl);
        create.Options.Add(Key);
        create.SetAction(CreateTokenAsync);
        token.Subcommands.Add(create);
        yield return token;

        var acl = new Command("acl", "Check ACL files before giving them to the masters (--acls).");
        var check = new Command("check", "Read an ACL file and report every mistake with its line and column.");
        check.Arguments.Add(AclFile);
        check.SetAction(CheckAclsAsync);
        var can = new Command("can", "Say whether an ACL file lets PRINCIPAL do ACTION on OBJECT: schedctl acl can acls.yaml alice update_quota eng");
        foreach (var a in new Argument[] { AclFile, AclPrincipal, AclActionName, AclObject })
        {
            can.Arguments.Add(a);
        }
        can.SetAction(CanAsync);
        acl.Subcommands.Add(check);
        acl.Subcommands.Add(can);
        yield return acl;

        var whoami = new Command("whoami", "Show the principal your credentials name.");
        whoami.SetAction((p, ct) => ClusterCommands.RunAsync(p, WhoAmIAsync, ct));
        yield return whoami;

        var teardown = new Command("teardown", "Tear down a framework and kill its tasks.");
        teardown.Arguments.Add(FrameworkId);
        teardown.SetAction((p, ct) => ClusterCommands.RunAsync(p, TeardownAsync, ct));
        yield return teardown;
    }

    private static async Task<int> CreateTokenAsync(ParseResult parse, CancellationToken ct)
    {
        var principal = parse.GetValue(Principal)!.Trim();
        if (principal.Length == 0)
        {
            throw CliException.BadInput("--principal must not be empty");
        }
        var ttl = Durations.Parse(parse.GetValue(Ttl)!, "--ttl");
        var output = parse.InvocationConfiguration.Output;
        if (parse.GetValue(Key) is { Length: > 0 } keyPath)
        {
            if (!File.Exists(keyPath))
            {
                throw CliException.BadInput($"--key: no token key at {keyPath} (a master creates WORKDIR/token-key.pem, or the file given to its --token-key)");
            }
            TokenKeys keys;
            try
            {
                keys = TokenKeys.LoadOrCreate(keyPath);
            }
            catch (InvalidOperationException e)
            {
                throw CliException.BadInput($"--key: {e.Message}");
            }
            using (keys)
            {
                await output.WriteLineAsync(keys.Issue(principal, ttl, DateTimeOffset.UtcNow));
            }
            return 0;
        }
        return await ClusterCommands.RunAsync(parse, async c =>
        {
            var response = await c.Connection.CallAsync(OperatorMethods.CreateToken, new CreateTokenRequest { Principal = principal, TtlSeconds = ttl.TotalSeconds }, c.Cancellation);
            if (!c.Print(response))
            {
                await c.Out.WriteLineAsync(response.Token);
            }
            return 0;
        }, ct);
    }

    private static AclPolicy LoadPolicy(ParseResult parse)
    {
        var file = parse.GetValue(AclFile)!;
        try
        {
            return AclPolicyFile.Load(file.FullName);
        }
        catch (AclFileException e)
        {
            throw CliException.BadInput(e.Message);
        }
    }

    private static async Task<int> CheckAclsAsync(ParseResult parse, CancellationToken ct)
    {
        var policy = LoadPolicy(parse);
        await parse.InvocationConfiguration.Output.WriteLineAsync($"{parse.GetValue(AclFile)!.FullName}: valid; {policy.Superusers.Count} superuser(s), {policy.Groups.Count} group(s), {policy.Rules.Count} rule(s), default {(policy.DefaultAllow ? "allow" : "deny")}");
        return 0;
    }

    private static async Task<int> CanAsync(ParseResult parse, CancellationToken ct)
    {
        var policy = LoadPolicy(parse);
        var name = parse.GetValue(AclActionName)!;
        if (!AclActions.TryParse(name, out var action))
        {
            var closest = Scheduler.Protocol.Text.Suggestions.Closest(name, AclActions.Names);
            throw CliException.BadInput($"unknown action '{name}'; {(closest is null ? "known: " + string.Join(", ", AclActions.Names) : $"did you mean '{closest}'?")}");
        }
        var caller = new Caller(parse.GetValue(AclPrincipal)!, CallerKind.Token);
        var target = parse.GetValue(AclObject)!;
        var allowed = policy.Allows(caller, action, target);
        await parse.InvocationConfiguration.Output.WriteLineAsync(
            $"{(allowed ? "allowed" : "denied")}: principal '{caller.Principal}' {(allowed ? "may" : "may not")} {action.Name()} on {action.DescribeObject(target)}{(policy.IsSuperuser(caller) ? " (a superuser)" : "")}");
        return allowed ? 0 : 1;
    }

    private static async Task<int> WhoAmIAsync(ClusterCommands.Context c)
    {
        var response = await c.Connection.CallAsync(OperatorMethods.WhoAmI, new WhoAmIRequest(), c.Cancellation);
        if (!c.Print(response))
        {
            await c.Out.WriteLineAsync(response.AuthenticatedBy == "anonymous"
                ? "anonymous (no credentials presented; give --token-file or SCHED_TOKEN)"
                : $"{response.Principal} (by {response.AuthenticatedBy}{(response.Superuser ? ", superuser" : "")})");
        }
        return 0;
    }

    private static async Task<int> TeardownAsync(ClusterCommands.Context c)
    {
        var id = c.Parse.GetValue(FrameworkId)!;
        var response = await c.Connection.CallAsync(OperatorMethods.TeardownFramework, new TeardownFrameworkRequest { FrameworkId = id }, c.Cancellation);
        if (!c.Print(response))
        {
            await c.Out.WriteLineAsync($"framework {id} torn down; its tasks are being killed");
        }
        return 0;
    }
}
