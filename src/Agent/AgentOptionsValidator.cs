using Microsoft.Extensions.Options;

namespace Scheduler.Agent;

/// <summary>Checks <see cref="AgentOptions"/> at start-up (and for the CLI before it starts the
/// agent), saying what to fix. The one set of rules for agent options.</summary>
public sealed class AgentOptionsValidator : IValidateOptions<AgentOptions>
{
    public ValidateOptionsResult Validate(string? name, AgentOptions options)
    {
        var problems = Problems(options);
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }

    /// <summary>The problems of <paramref name="options"/>, in words (empty = fine).</summary>
    public static IReadOnlyList<string> Problems(AgentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(options.WorkDir))
        {
            problems.Add("WorkDir is required: pass --work-dir DIR (a directory the agent owns).");
        }
        foreach (var dir in options.FetchAllowDirs)
        {
            if (!Path.IsPathFullyQualified(dir) || Path.TrimEndingDirectorySeparator(dir) == "/")
            {
                problems.Add($"--fetch-allow-dir '{dir}' must be an absolute path of a directory other than /.");
            }
        }
        if (options.Isolation is not ("auto" or "cgroups" or "none"))
        {
            problems.Add($"Isolation '{options.Isolation}' is not one of auto, cgroups, none.");
        }
        if (options.Runtime is not ("auto" or "runc" or "crun"))
        {
            problems.Add($"Runtime '{options.Runtime}' is not one of auto, runc, crun.");
        }
        if (options.Tls is { Any: true } tls && (string.IsNullOrWhiteSpace(tls.Certificate) || string.IsNullOrWhiteSpace(tls.Key) || string.IsNullOrWhiteSpace(tls.Ca)))
        {
            problems.Add("TLS needs --tls-cert, --tls-key and --tls-ca together (the agent serves the certificate, presents it to the masters, and checks theirs against the CA).");
        }
        if (!string.IsNullOrEmpty(options.AclsFile) && string.IsNullOrEmpty(options.TokenKeyFile))
        {
            problems.Add("--acls needs --token-key: the file service can only apply ACLs to callers it authenticates (give the masters' public token key).");
        }
        if (!string.IsNullOrEmpty(options.TokenKeyFile) && !File.Exists(options.TokenKeyFile))
        {
            problems.Add($"--token-key {options.TokenKeyFile} does not exist; give the masters' public token key (a dev cluster's is DIR/token-key.pub.pem).");
        }
        if (!string.IsNullOrEmpty(options.AclsFile) && !File.Exists(options.AclsFile))
        {
            problems.Add($"--acls {options.AclsFile} does not exist; give the ACL file the masters use.");
        }
        foreach (var user in options.AllowedTaskUsers)
        {
            if (user.Length == 0 || user.Any(c => char.IsWhiteSpace(c) || c is ',' or ':' or '/' or '\0'))
            {
                problems.Add($"--allowed-task-users: '{user}' is not a user name; give names separated by commas (e.g. nobody,app).");
            }
        }
        foreach (var m in options.Masters)
        {
            if (!Endpoints.TryParse(m, out _, out _))
            {
                problems.Add($"Master address '{m}' is not host:port.");
            }
        }
        if (!Endpoints.TryParse(options.Listen, out _, out _))
        {
            problems.Add($"Listen address '{options.Listen}' is not host:port.");
        }
        if (options.MetricsListen is { Length: > 0 } metrics && (!Endpoints.TryParse(metrics, out var metricsHost, out _)
            || (metricsHost != "localhost" && !System.Net.IPAddress.TryParse(metricsHost.Trim('[', ']'), out _))))
        {
            problems.Add($"Metrics address '{metrics}' is not IP:port (e.g. 0.0.0.0:9106).");
        }
        return problems;
    }
}
