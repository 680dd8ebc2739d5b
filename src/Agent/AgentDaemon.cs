using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Sched.V1;
using Scheduler.Agent.Execution;
using Scheduler.Agent.Files;
using Scheduler.Agent.Isolation;
using Scheduler.Agent.Native;
using Scheduler.Agent.Resources;
using Scheduler.Hosting;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.HealthCheck;

using Scheduler.Security;

namespace Scheduler.Agent;

/// <summary>
/// The agent daemon as a hosted service: detects resources, serves AgentFiles on
/// <see cref="AgentOptions.Listen"/>, re-adopts checkpointed tasks, and keeps a link to the leading
/// master until the host stops. Tasks keep running (under their supervisors) when the agent stops.
/// Added by <see cref="AgentServiceCollectionExtensions.AddSchedulerAgent"/>.
/// </summary>
public sealed class AgentDaemon(IOptions<AgentOptions> options, ILoggerFactory loggerFactory, TimeProvider time, IHostApplicationLifetime lifetime, DaemonAnnouncements announcements) : BackgroundService
{
    private readonly AgentOptions _options = options.Value;
    private readonly ILoggerFactory _loggerFactory = loggerFactory;
    private readonly TimeProvider _time = time;
    private readonly IHostApplicationLifetime _lifetime = lifetime;
    private readonly DaemonAnnouncements _announcements = announcements;

    /// <summary>0 after a clean stop; 2 when the agent could not start (work dir in use, bad
    /// resources or attributes, no isolation); 3/4 when the master refused the agent.</summary>
    public int ExitCode { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var log = _loggerFactory.CreateLogger("Scheduler.Agent");
        var options = _options;
        var cancellationToken = stoppingToken;
        Directory.CreateDirectory(options.WorkDir);
        WorkDirLock workDirLock;
        try
        {
            workDirLock = WorkDirLock.Acquire(options.WorkDir);
        }
        catch (WorkDirLockedException e)
        {
            await FailAsync(e.Message);
            return;
        }
        using var heldLock = workDirLock;
        List<Resource> resources;
        List<Attribute> attributes;
        try
        {
            resources = ResourceDetector.Detect(options.WorkDir, options.Resources);
            attributes = ResourceText.ParseAttributes(options.Attributes);
        }
        catch (FormatException e)
        {
            await FailAsync(e.Message);
            return;
        }
        IIsolator isolator;
        try
        {
            isolator = Isolators.Create(options.Isolation, Isolators.ScopeFor(options.WorkDir));
        }
        catch (IsolationException e)
        {
            await FailAsync(e.Message);
            return;
        }
        log.LogInformation("isolation: {Isolator}", isolator.Name);

        await using var core = new AgentCore(options, isolator, ExecutorSet.CreateDefault(options, isolator, _time), _time, log);
        core.Recover();

        _ = Endpoints.TryParse(options.Listen, out var host, out var port);
        var address = host is "localhost" ? IPAddress.Loopback : IPAddress.TryParse(host, out var ip) ? ip : IPAddress.Any;
        using var metrics = string.IsNullOrEmpty(options.MetricsListen) ? null : new Telemetry.AgentMetrics(core);
        core.Metrics = metrics;
        ServerTls? tls;
        try
        {
            tls = ServerTls.FromFiles(options.Tls);
        }
        catch (Channels.Tls.TlsFileException e)
        {
            await FailAsync(e.Message);
            return;
        }
        var serverOptions = new GrpcServerOptions { LoggerFactory = _loggerFactory, Tls = tls };
        serverOptions.Endpoints.Add(new GrpcEndpoint(new IPEndPoint(address, port)));
        if (metrics is not null)
        {
            serverOptions.Interceptors.Add(new CallMetricsInterceptor(metrics.Meter, "sched.agent"));
        }
        Files.SandboxAccess? access = null;
        TokenKeys? tokenKeys = null;
        if (options.TokenKeyFile is { Length: > 0 } tokenKeyFile)
        {
            try
            {
                tokenKeys = TokenKeys.LoadVerifier(tokenKeyFile);
                var authorizer = options.AclsFile is { Length: > 0 } acls ? Authorizer.FromFile(acls, _time) : Authorizer.Fixed(AclPolicy.Default);
                authorizer.ReloadFailed += m => log.LogWarning("ACL file not reloaded, the previous rules stay: {Problem}", m);
                access = new Files.SandboxAccess(authorizer, core.SandboxOwners);
            }
            catch (Exception e) when (e is InvalidOperationException or AclFileException)
            {
                await FailAsync(e.Message);
                return;
            }
            serverOptions.Authentication = new ServerAuthentication
            {
                Tokens = tokenKeys.ValidationParameters(),
                TrustClientCertificates = true,
                AllowAnonymous = false,
                IsPublicMethod = m => m.StartsWith("/grpc.health.v1.Health/", StringComparison.Ordinal),
                Hint = "present a token as 'authorization: Bearer TOKEN' metadata (schedctl: --token-file or SCHED_TOKEN), or a client certificate of the cluster's CA",
            };
        }
        else
        {
            log.LogWarning("the file service serves every sandbox to anyone who reaches {Listen}: start the agent with --token-key (and --acls) to check callers", options.Listen);
        }
        using var heldTokenKeys = tokenKeys;
        // File serving reads on threads of its own: a read the kernel holds up cannot starve the link.
        using var readers = new FileReaders();
        var files = new AgentFilesService(core.SandboxesDir, TimeSpan.FromMilliseconds(200), readers, access);
        var health = new HealthServiceImpl();
        health.SetStatus("", HealthCheckResponse.Types.ServingStatus.Serving);
        health.SetStatus(AgentFiles.Descriptor.FullName, HealthCheckResponse.Types.ServingStatus.Serving);
        await using var server = await GrpcServer.StartAsync(serverOptions, new GrpcServices().Add(files).Add(health), cancellationToken);
        files.Stopping = server.Stopping;
        var bound = server.BoundEndpoints[0];
        var advertised = $"{(address.Equals(IPAddress.Any) ? System.Net.Dns.GetHostName() : host)}:{bound.Port}";
        _announcements.Say($"agent listening on {host}:{bound.Port}");
        await using var scrape = metrics is null ? null : await MetricsEndpoint.StartAsync(options.MetricsListen!, [metrics.Meter], cancellationToken);
        if (scrape is not null)
        {
            _announcements.Say($"agent metrics on {scrape.Url}");
        }

        AgentInfo Info()
        {
            var info = new AgentInfo
            {
                Hostname = options.Hostname ?? System.Net.Dns.GetHostName(),
                Address = advertised,
                Version = typeof(AgentDaemon).Assembly.GetName().Version?.ToString() ?? "0",
                BootId = ProcFs.BootId(),
            };
            info.Resources.AddRange(resources);
            info.Attributes.AddRange(attributes);
            return info;
        }

        var link = new MasterLink(core, options, Info, log, _time, new Random(), _announcements);
        using var gc = new SandboxCollector(core, options, log).Start(cancellationToken);
        var code = await link.RunAsync(cancellationToken);
        await server.StopAsync();
        isolator.RemoveScopeIfEmpty();
        ExitCode = code;
        if (code != 0)
        {
            // Refused by the master for good: the agent stops rather than retrying.
            _lifetime.StopApplication();
        }
    }

    private Task FailAsync(string problem)
    {
        _announcements.Complain("agent: " + problem);
        ExitCode = 2;
        _lifetime.StopApplication();
        return Task.CompletedTask;
    }
}
