using System.CommandLine;
using Scheduler.Channels;
using Scheduler.Channels.Tls;

namespace Scheduler.Cli;

/// <summary>Options every command understands.</summary>
public static class GlobalOptions
{
    public const string DefaultMaster = "127.0.0.1:5050";

    public static readonly Option<string?> Master = new("--master")
    {
        Description = "Master address(es), host:port[,host:port…]; default $SCHED_MASTER, else " + DefaultMaster + ". The CLI follows the leader.",
        Recursive = true,
    };

    public static readonly Option<bool> Json = new("--json")
    {
        Description = "Print JSON (for scripts) instead of tables.",
        Recursive = true,
    };

    public static readonly Option<string?> TlsCert = new("--tls-cert")
    {
        Description = "PEM certificate: the one daemons serve and present to masters; for clients, the one presented for mutual TLS (with --tls-key).",
        Recursive = true,
    };

    public static readonly Option<string?> TlsKey = new("--tls-key")
    {
        Description = "PEM private key of --tls-cert.",
        Recursive = true,
    };

    public static readonly Option<string?> TlsCa = new("--tls-ca")
    {
        Description = "PEM CA certificate(s) peers' certificates must chain to; with it, clients reach masters and agents over TLS. Clients default to $SCHED_TLS_CA.",
        Recursive = true,
    };

    /// <summary>The environment variable clients read for the CA when <c>--tls-ca</c> is not given.</summary>
    public const string TlsCaVariable = "SCHED_TLS_CA";

    /// <summary>The TLS files of a daemon: <c>--tls-cert --tls-key --tls-ca</c> as given (no environment).</summary>
    public static TlsFiles? DaemonTls(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var files = new TlsFiles(parse.GetValue(TlsCert), parse.GetValue(TlsKey), parse.GetValue(TlsCa));
        return files.Any ? files : null;
    }

    /// <summary>The TLS files of a client: the flags, with the CA from <c>SCHED_TLS_CA</c> when
    /// <c>--tls-ca</c> is not given.</summary>
    public static TlsFiles? ClientTlsFiles(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var ca = parse.GetValue(TlsCa);
        if (string.IsNullOrWhiteSpace(ca))
        {
            ca = Environment.GetEnvironmentVariable(TlsCaVariable);
        }
        var files = new TlsFiles(parse.GetValue(TlsCert), parse.GetValue(TlsKey), string.IsNullOrWhiteSpace(ca) ? null : ca);
        return files.Any ? files : null;
    }

    public static readonly Option<string?> TokenFile = new("--token-file")
    {
        Description = "File holding the bearer token to present; default $SCHED_TOKEN (the token itself).",
        Recursive = true,
    };

    /// <summary>The token to present: the file of <c>--token-file</c>, else <c>SCHED_TOKEN</c>, else none.</summary>
    /// <exception cref="CliException">When the token file cannot be read.</exception>
    public static string? Token(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        if (parse.GetValue(TokenFile) is { Length: > 0 } path)
        {
            try
            {
                return Scheduler.Channels.GrpcChannels.ReadTokenFile(path);
            }
            catch (InvalidOperationException e)
            {
                throw CliException.BadInput($"--token-file: {e.Message}");
            }
        }
        return Environment.GetEnvironmentVariable("SCHED_TOKEN") is { Length: > 0 } token ? token.Trim() : null;
    }

    /// <summary>Channel settings for every call this command makes: credentials (<see cref="Token"/>)
    /// and TLS (<see cref="ClientTlsFiles"/>).</summary>
    /// <exception cref="CliException">When the token file cannot be read, or a TLS file is missing or does not load.</exception>
    public static GrpcChannelSettings ChannelSettings(ParseResult parse)
    {
        ClientTls? tls;
        try
        {
            tls = ClientTls.FromFiles(ClientTlsFiles(parse));
        }
        catch (TlsFileException e)
        {
            throw CliException.BadInput(e.Message);
        }
        return new GrpcChannelSettings { BearerToken = Token(parse), Tls = tls };
    }

    /// <summary>The masters to talk to: <c>--master</c>, else <c>SCHED_MASTER</c>, else the default.</summary>
    public static IReadOnlyList<string> Masters(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var text = parse.GetValue(Master);
        var source = "--master";
        if (string.IsNullOrWhiteSpace(text))
        {
            text = Environment.GetEnvironmentVariable("SCHED_MASTER");
            source = "SCHED_MASTER";
        }
        if (string.IsNullOrWhiteSpace(text))
        {
            return [DefaultMaster];
        }
        return Addresses.ParseList(text, source);
    }
}
