using System.Security.Cryptography.X509Certificates;
using Scheduler.Channels;
using Scheduler.Channels.Tls;
using Scheduler.Security;

namespace Scheduler.Cli.Cluster;

/// <summary>
/// The credentials of a local cluster, in its work dir: the token key its masters share
/// (<c>token-key.pem</c>), an ACL file to edit (<c>acls.yaml</c>, the built-in policy written out;
/// the masters read it again when it changes), a token of the superuser <c>admin</c>
/// (<c>admin.token</c>) and one of the principal <c>agent</c> for the agents (<c>agent.token</c>),
/// which check tokens with the key's public half (<c>token-key.pub.pem</c>);
/// and its throwaway certificate authority under <c>tls/</c>: <c>ca.pem</c> (what clients trust,
/// <c>SCHED_TLS_CA</c>), <c>ca-key.pem</c>, and a certificate with its key for each kind of daemon
/// (<c>master.pem</c>, <c>agent.pem</c>, <c>jobs.pem</c>, each naming <c>localhost</c>,
/// <c>127.0.0.1</c> and <c>::1</c>, its common name the daemon's principal). Existing files are
/// kept while valid, so a restarted cluster keeps its tokens and its CA.
/// </summary>
public sealed record DevCredentials(string TokenKey, string Acls, string AdminTokenFile, string AgentTokenFile, string TlsDir)
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

    /// <summary>The daemons that get a certificate, by the file names under <c>tls/</c>.</summary>
    public static readonly IReadOnlyList<string> Daemons = ["master", "agent", "jobs"];

    /// <summary>The admin token itself.</summary>
    public string AdminToken => File.ReadAllText(AdminTokenFile).Trim();

    /// <summary>The public half of the token key (<c>token-key.pub.pem</c>): agents check the
    /// callers of their file service with it.</summary>
    public string TokenPublicKey => Path.ChangeExtension(TokenKey, ".pub.pem");

    /// <summary>The CA certificate clients trust (<c>DIR/tls/ca.pem</c>).</summary>
    public string CaFile => Path.Combine(TlsDir, "ca.pem");

    /// <summary>The <c>--tls-cert --tls-key --tls-ca</c> of a daemon of kind <paramref name="daemon"/>
    /// (one of <see cref="Daemons"/>).</summary>
    public TlsFiles DaemonTls(string daemon) =>
        Daemons.Contains(daemon) ? new TlsFiles(Path.Combine(TlsDir, daemon + ".pem"), Path.Combine(TlsDir, daemon + "-key.pem"), CaFile)
            : throw new ArgumentOutOfRangeException(nameof(daemon), daemon, "no certificate is made for this daemon");

    /// <summary>Channel settings of an operator client: the admin token, trusting the CA.</summary>
    public GrpcChannelSettings AdminChannel() => new() { BearerToken = AdminToken, Tls = ClientTls.FromFiles(CaFile) };

    public static DevCredentials Ensure(string workDir)
    {
        var credentials = new DevCredentials(
            Path.Combine(workDir, "token-key.pem"),
            Path.Combine(workDir, "acls.yaml"),
            Path.Combine(workDir, "admin.token"),
            Path.Combine(workDir, "agent.token"),
            Path.Combine(workDir, "tls"));
        using var keys = TokenKeys.LoadOrCreate(credentials.TokenKey);
        File.WriteAllText(credentials.TokenPublicKey, keys.PublicKeyPem() + "\n");
        if (!File.Exists(credentials.Acls))
        {
            File.WriteAllText(credentials.Acls, DefaultAcls);
        }
        var now = DateTimeOffset.UtcNow;
        WriteToken(credentials.AdminTokenFile, keys, "admin", now);
        WriteToken(credentials.AgentTokenFile, keys, "agent", now);
        credentials.EnsureCertificates(now);
        return credentials;
    }

    /// <summary>Makes the CA unless a valid one is kept, and a certificate for each daemon kind
    /// unless a valid one this CA signed is kept.</summary>
    private void EnsureCertificates(DateTimeOffset now)
    {
        using var ca = CertificateIssuer.LoadOrCreate(CaFile, Path.Combine(TlsDir, "ca-key.pem"), "schedctl dev CA", now, Lifetime, TimeSpan.FromDays(1));
        foreach (var daemon in Daemons)
        {
            var files = DaemonTls(daemon);
            if (File.Exists(files.Certificate) && File.Exists(files.Key))
            {
                try
                {
                    using var kept = X509Certificate2.CreateFromPemFile(files.Certificate!, files.Key);
                    if (ca.Issued(kept, now, TimeSpan.FromDays(1)))
                    {
                        continue;
                    }
                }
                catch (System.Security.Cryptography.CryptographicException)
                {
                    // Not a pair that loads: made again below.
                }
            }
            using var issued = ca.IssueForLoopback(daemon);
            CertificateIssuer.WritePem(issued, files.Certificate!, files.Key);
        }
    }

    /// <summary>Writes a fresh token unless the file holds one this key signed that is valid for another day.</summary>
    private static void WriteToken(string path, TokenKeys keys, string principal, DateTimeOffset now)
    {
        if (File.Exists(path))
        {
            var kept = File.ReadAllText(path).Trim();
            var (who, _) = keys.ValidateAsync(kept).GetAwaiter().GetResult();
            var expiry = who is null ? DateTime.MinValue : new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(kept).ValidTo;
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
