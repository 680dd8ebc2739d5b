using System.Net;
using System.Reflection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Sched.V1;
using Scheduler.Master.Election;
using Scheduler.Master.Loop;
using Scheduler.Master.Registry;
using Scheduler.Master.Security;
using Scheduler.Master.Services;
using Scheduler.Master.Telemetry;
using Scheduler.Hosting;

namespace Scheduler.Master;

/// <summary>
/// The master process: serves gRPC, campaigns for leadership, and runs one
/// <see cref="MasterLoop"/> per leadership term, rebuilding state from the registry each time.
/// </summary>
public sealed class MasterDaemon : BackgroundService
{
    private readonly MasterOptions _options;
    private readonly MasterComponents _components;
    private readonly MasterRuntime _runtime;
    private readonly IServiceProvider _services;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly DaemonAnnouncements _announcements;
    private readonly MasterMetrics _metrics;
    private readonly TaskCompletionSource<string> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public MasterDaemon(IOptions<MasterOptions> options, IOptions<MasterComponents> components, MasterRuntime runtime, MasterMetrics metrics, IServiceProvider services, ILoggerFactory loggerFactory, DaemonAnnouncements announcements)
    {
        _options = options.Value;
        _components = components.Value;
        _runtime = runtime;
        _metrics = metrics;
        _services = services;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger("Scheduler.Master");
        _announcements = announcements;
    }

    /// <summary>Completes with <c>HOST:PORT</c> once the master listens (faults if it fails first).</summary>
    public Task<string> Listening => _listening.Task;

    /// <summary>The Prometheus scrape URL once serving, when <see cref="MasterOptions.MetricsListen"/> is set.</summary>
    public System.Uri? MetricsUrl { get; private set; }

    /// <summary>Set when the master stopped because of an error.</summary>
    public Exception? Failure { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        GrpcServer? server = null;
        MetricsEndpoint? metrics = null;
        ILeaderElection? election = null;
        IRegistryStore? store = null;
        try
        {
            if (!MasterOptions.TryParseEndpoint(_options.Listen, out var endpoint))
            {
                throw new InvalidOperationException($"Listen '{_options.Listen}' is not HOST:PORT.");
            }
            var security = MasterSecurity.Create(_options, _logger);
            _runtime.Security = security;
            var serverOptions = new GrpcServerOptions
            {
                LoggerFactory = _loggerFactory,
                MaxSendMessageSize = _options.MaxMessageSize,
                MaxReceiveMessageSize = _options.MaxMessageSize,
                Tls = ServerTls.FromFiles(_options.Tls),
                Authentication = security.ServerAuthentication(),
            };
            serverOptions.Endpoints.Add(new GrpcEndpoint(endpoint));
            serverOptions.Interceptors.Add(new CallMetricsInterceptor(_metrics.Meter, "sched.master"));
            serverOptions.Interceptors.Add(new AuditInterceptor(_loggerFactory.CreateLogger("Scheduler.Master.Audit")));
            serverOptions.Interceptors.Add(new LeaderInterceptor(_runtime));
            var services = new GrpcServices()
                .Add(new SchedulerService(_runtime))
                .Add(new AgentLinkService(_runtime))
                .Add(new OperatorService(_runtime))
                .Add(_runtime.Health);
            server = await GrpcServer.StartAsync(serverOptions, services, stoppingToken);
            var bound = server.BoundEndpoints[0];
            var address = bound.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
                ? $"[{bound.Address}]:{bound.Port}"
                : $"{bound.Address}:{bound.Port}";
            var advertise = string.IsNullOrEmpty(_options.Advertise)
                ? (IPAddress.Any.Equals(bound.Address) ? $"{Dns.GetHostName()}:{bound.Port}" : address)
                : _options.Advertise;
            var self = new MasterInfo
            {
                Id = Guid.NewGuid().ToString("N"),
                Address = advertise,
                Hostname = Dns.GetHostName(),
                Version = typeof(MasterDaemon).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.1.0",
                StartTime = _runtime.Time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0,
            };
            _runtime.Self = self;
            election = (_components.Election ?? throw new InvalidOperationException("no leader election configured"))(_services, _options, self);
            store = (_components.Registry ?? throw new InvalidOperationException("no registry store configured"))(_services, _options, election);
            _runtime.Election = election;
            ReportCampaignFailures(election);
            _runtime.Standalone = !election.Replicated;
            if (!string.IsNullOrEmpty(_options.MetricsListen))
            {
                metrics = await MetricsEndpoint.StartAsync(_options.MetricsListen, [_metrics.Meter], stoppingToken);
                MetricsUrl = metrics.Url;
                _announcements.Say($"master metrics on {metrics.Url}");
            }
            _announcements.Say($"master listening on {address}");
            MasterLog.Listening(_logger, address);
            if (security.AllowAnonymous)
            {
                MasterLog.AnonymousAllowed(_logger, address);
            }
            _listening.TrySetResult(address);
            _metrics.SetGaugeSource(() => _runtime.CurrentLoop?.Gauges ?? new MasterGauges(0, 0, new Dictionary<TaskState, int>()));

            while (!stoppingToken.IsCancellationRequested)
            {
                var leadership = await election.CampaignAsync(stoppingToken);
                await RunTermAsync(leadership, store, self, stoppingToken);
                if (!stoppingToken.IsCancellationRequested)
                {
                    MasterLog.LeadershipLost(_logger, leadership.Term);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            Failure = e;
            _listening.TrySetException(e);
            MasterLog.MasterFailed(_logger, e);
            throw;
        }
        finally
        {
            _runtime.End();
            _metrics.SetGaugeSource(null);
            if (election is not null)
            {
                try
                {
                    using var resignTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                    await election.ResignAsync(resignTimeout.Token);
                }
                catch (Exception)
                {
                    // Best effort: the lease expires anyway.
                }
                await election.DisposeAsync();
            }
            if (server is not null)
            {
                await server.DisposeAsync();
            }
            if (metrics is not null)
            {
                await metrics.DisposeAsync();
            }
            if (store is not null)
            {
                await store.DisposeAsync();
            }
            _listening.TrySetCanceled(CancellationToken.None);
        }
    }

    /// <summary>Logs failed campaign attempts (etcd unreachable, no quorum): the first at once, then
    /// at most one every 10 s, so an outage is visible without flooding the log.</summary>
    private void ReportCampaignFailures(ILeaderElection election)
    {
        var lastLogged = long.MinValue;
        var suppressed = 0;
        var endpoints = string.Join(",", _options.EtcdEndpoints);
        election.CampaignFailed += e =>
        {
            var now = _runtime.Time.GetTimestamp();
            if (lastLogged != long.MinValue && _runtime.Time.GetElapsedTime(lastLogged, now) < TimeSpan.FromSeconds(10))
            {
                suppressed++;
                return;
            }
            lastLogged = now;
            _logger.LogWarning("Cannot campaign for leadership on etcd {Endpoints}: {Error} (retrying; {Suppressed} more failures since the last report). This master serves as a follower until etcd answers.", endpoints, e.Message, suppressed);
            suppressed = 0;
        };
    }

    private async Task RunTermAsync(Leadership leadership, IRegistryStore store, MasterInfo self, CancellationToken stoppingToken)
    {
        using var term = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, leadership.Lost);
        var location = _options.EtcdEndpoints.Count == 0 ? Path.Combine(_options.WorkDir, "registry") : "etcd " + string.Join(",", _options.EtcdEndpoints);
        var records = await RegistryRecords.LoadAsync(store, location, term.Token);
        var allocator = (_components.Allocator ?? throw new InvalidOperationException("no allocator configured"))(_services, _options, _runtime.Time);
        var leaderSelf = self.Clone();
        leaderSelf.Term = leadership.Term;
        await using var writer = new RegistryWriter(store, _logger, () => term.Cancel(), leadership.Lost);
        var loop = new MasterLoop(_options, _runtime.Time, allocator, writer, leaderSelf, _logger, _metrics, _runtime.LeaderHint)
        {
            Security = _runtime.Security,
        };
        _runtime.Begin(loop, term.Token);
        try
        {
            await loop.RunAsync(records, term.Token);
        }
        finally
        {
            _runtime.End();
        }
    }
}
