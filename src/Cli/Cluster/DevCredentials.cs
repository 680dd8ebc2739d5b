using Scheduler.Security;

namespace Scheduler.Cli.Cluster;

/// <summary>
/// The credentials of a local cluster, in its work dir: the token key its masters share
/// (<c>token-key.pem</c>), an ACL file to edit (<c>acls.yaml</c>, the built-in policy written out;
/// the masters read it again when it changes), a token of the superuser <c>admin</c>
/// (<c>admin.token</c>) and one of the principal <c>agent</c> for the agents (<c>agent.token</c>).
/// Existing files are kept, so a restarted cluster keeps its tokens.
/// </summary>
public sealed record DevCredentials(string TokenKey, string Acls, string AdminTokenFile, string AgentTokenFile)
{
    public const string DefaultAcls = """
        # Who may do what on this cluster (docs/security.md). The masters read this file again when it
        # changes; a bad edit is logged and the previous rules stay.
        superusers: [admin]
        acls:
          # Agents present agent.token.
          - principals: [agent]
            actions: [register_agents, view_agents]
            objects: ["*"]
          # Every principal may register frameworks in any role and run tasks as any user but root,
          # and see agents and roles. Each sees and acts on its own frameworks and tasks only.
          - principals: ["*"]
            actions: [register_framework, run_task, view_agents, view_roles]
            objects: ["*"]
        default: deny

        """;

    private static readonly TimeSpan Lifetime = TimeSpan.FromDays(30);

    /// <summary>The admin token itself.</summary>
    public string AdminToken => File.ReadAllText(AdminTokenFile).Trim();

    public static DevCredentials Ensure(string workDir)
    {
        var credentials = new DevCredentials(
            Path.Combine(workDir, "token-key.pem"),
            Path.Combine(workDir, "acls.yaml"),
            Path.Combine(workDir, "admin.token"),
            Path.Combine(workDir, "agent.token"));
        using var keys = TokenKeys.LoadOrCreate(credentials.TokenKey);
        if (!File.Exists(credentials.Acls))
        {
            File.WriteAllText(credentials.Acls, DefaultAcls);
        }
        var now = DateTimeOffset.UtcNow;
        WriteToken(credentials.AdminTokenFile, keys, "admin", now);
        WriteToken(credentials.AgentTokenFile, keys, "agent", now);
        return credentials;
    }

    /// <summary>Writes a fresh token unless the file holds one this key signed that is valid for another day.</summary>
    private static void WriteToken(string path, TokenKeys keys, string principal, DateTimeOffset now)
    {
        if (File.Exists(path))
        {
            var (who, _) = keys.ValidateAsync(File.ReadAllText(path).Trim()).GetAwaiter().GetResult();
            var expiry = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(File.ReadAllText(path).Trim()).ValidTo;
            if (who == principal && expiry > now.UtcDateTime.AddDays(1))
            {
                return;
            }
        }
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using var file = new FileStream(path, options);
        using var writer = new StreamWriter(file);
        writer.Write(keys.Issue(principal, Lifetime, now));
        writer.Write('\n');
    }
}
