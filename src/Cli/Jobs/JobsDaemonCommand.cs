using System.CommandLine;
using Microsoft.Extensions.Logging;
using Scheduler.Cli.Commands;
using Scheduler.Jobs;

namespace Scheduler.Cli.Jobs;

/// <summary><c>schedctl jobs run --master M --work-dir DIR [--etcd URL,…] [--listen HOST:PORT]</c>: the jobs framework as a daemon.</summary>
public static class JobsDaemonCommand
{
    private static readonly Option<string> Masters = new("--master") { Description = "Master address(es), host:port[,…]; default $SCHED_MASTER, else 127.0.0.1:5050." };
    private static readonly Option<string> WorkDir = new("--work-dir") { Description = "The jobs' directory: its state store when there is no --etcd.", Required = true };
    private static readonly Option<string?> Etcd = new("--etcd") { Description = "The masters' etcd (URL,…): the state is kept there under /sched/jobs and several instances may run, one active; default: the embedded file store in --work-dir, one instance." };
    private static readonly Option<string?> EtcdUser = new("--etcd-user") { Description = "etcd authentication as USER:PASSWORD (or USER with the password in $SCHED_ETCD_PASSWORD)." };
    private static readonly Option<double?> LeaseTtl = new("--lease-ttl") { Description = "Lease of the active instance on etcd, whole seconds ≥ 2 (default 2): a dead active instance is replaced within about this time." };
    private static readonly Option<string> Listen = new("--listen") { Description = "host:port the Jobs API serves on (port 0: any free port).", DefaultValueFactory = _ => "127.0.0.1:0" };
    private static readonly Option<string?> Advertise = new("--advertise") { Description = "host:port clients use to reach the Jobs API (default: the bound address)." };
    private static readonly Option<bool> Verbose = new("--verbose", "-v") { Description = "Debug logging." };

    public static Command Create()
    {
        var jobs = new Command("jobs", "The jobs framework (declarative services, batch and cron).");
        var run = new Command("run", "Run the jobs framework: subscribes to the masters and serves the Jobs API ('schedctl job …').");
        foreach (var o in new Option[] { Masters, WorkDir, Etcd, EtcdUser, LeaseTtl, Listen, Advertise, Verbose, DaemonCommands.WatchParent })
        {
            run.Options.Add(o);
        }
        run.SetAction(RunAsync);
        jobs.Subcommands.Add(run);
        return jobs;
    }

    /// <summary>The framework's TLS: the client files (CA from $SCHED_TLS_CA when not given), checked now.</summary>
    private static Channels.Tls.TlsFiles? JobsTls(ParseResult parse)
    {
        _ = GlobalOptions.ChannelSettings(parse);
        var files = GlobalOptions.ClientTlsFiles(parse);
        if (files is { Certificate.Length: > 0, Key.Length: > 0, Ca.Length: > 0 })
        {
            _ = DaemonCommands.DaemonTls(parse);
        }
        return files;
    }

    private static async Task<int> RunAsync(ParseResult parse, CancellationToken ct)
    {
        var masters = parse.GetValue(Masters) is { Length: > 0 } m ? Addresses.ParseList(m, "--master") : GlobalOptions.Masters(parse);
        var listen = Addresses.Validate(parse.GetValue(Listen)!, "--listen", allowPortZero: true);
        var workDir = parse.GetValue(WorkDir)!;
        Daemons.DaemonPreflight.WorkDir(workDir, "jobs framework");
        Daemons.DaemonPreflight.Listen(listen, "--listen");
        using var stop = DaemonCommands.WatchParentProcess(parse, ct);
        var verbose = parse.GetValue(Verbose);
        using var loggers = LoggerFactory.Create(b =>
        {
            Daemons.DaemonLogging.Configure(b, verbose);
            // One line per Jobs API call is noise in a daemon's log; failed calls are logged by the server.
            b.AddFilter("Microsoft.AspNetCore", verbose ? LogLevel.Information : LogLevel.Warning);
        });
        var etcd = (parse.GetValue(Etcd) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (etcd.Length == 0 && (parse.GetValue(EtcdUser) is not null || parse.GetValue(LeaseTtl) is not null))
        {
            throw CliException.BadInput("--etcd-user and --lease-ttl apply to the jobs state on etcd: give --etcd URL,… as well");
        }
        var ttl = TimeSpan.FromSeconds(parse.GetValue(LeaseTtl) ?? 2);
        if (ttl < TimeSpan.FromSeconds(2) || ttl > TimeSpan.FromSeconds(300) || ttl.TotalSeconds % 1 != 0)
        {
            throw CliException.BadInput($"--lease-ttl must be a whole number of seconds from 2 to 300 (etcd's minimum lease is 2 s), not {ttl.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        }
        string? etcdUser = null;
        string? etcdPassword = null;
        if (parse.GetValue(EtcdUser) is { Length: > 0 } user)
        {
            var colon = user.IndexOf(':', StringComparison.Ordinal);
            etcdUser = colon < 0 ? user : user[..colon];
            etcdPassword = colon < 0 ? Environment.GetEnvironmentVariable("SCHED_ETCD_PASSWORD") : user[(colon + 1)..];
            if (etcdUser.Length == 0 || string.IsNullOrEmpty(etcdPassword))
            {
                throw CliException.BadInput("--etcd-user takes USER:PASSWORD, or USER with the password in $SCHED_ETCD_PASSWORD");
            }
        }
        var options = new JobsHostOptions
        {
            EtcdEndpoints = [.. etcd],
            EtcdUsername = etcdUser,
            EtcdPassword = etcdPassword,
            LeaseTtl = ttl,
            Masters = [.. masters],
            WorkDir = workDir,
            Listen = System.Net.IPEndPoint.Parse(listen),
            Advertise = parse.GetValue(Advertise),
            Tls = JobsTls(parse),
            // --token-file, else SCHED_TOKEN (dev up passes the operator token this way).
            Token = GlobalOptions.Token(parse),
        };
        await using var host = await JobsHost.StartAsync(options, loggers, cancellationToken: stop.Token);
        try
        {
            await host.Completion.WaitAsync(stop.Token);
        }
        catch (OperationCanceledException)
        {
        }
        return 0;
    }
}
