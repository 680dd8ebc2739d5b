using System.Globalization;
using Microsoft.Extensions.Logging;
using Sched.V1;
using Scheduler.FrameworkSdk;
using Scheduler.Hosting;
using Scheduler.Jobs.Api;
using Scheduler.Jobs.Engine;
using Scheduler.Jobs.State;
using Scheduler.Master.Election;
using Scheduler.Master.Registry;
using Scheduler.Protocol;

namespace Scheduler.Jobs;

/// <summary>
/// The jobs framework as a running service. It serves the Jobs API at once and campaigns to be the
/// active instance: alone (the embedded file store in its work dir, one instance), or on the
/// masters' etcd (its own keys under <see cref="JobsHostOptions.EtcdRoot"/>), where several
/// instances run and one is active at a time, elected as the masters are. The active instance
/// loads the state from the store, subscribes to the masters under the saved framework id (a
/// failover, so the master keeps its tasks) and reconciles; when its leadership ends it stops at
/// once — its state writes are fenced by that leadership, so it cannot launch anything after — and
/// campaigns again. A standby answers API calls with UNAVAILABLE and the active instance's address
/// in the <c>sched-leader</c> trailer, which the CLI follows.
/// The active instance's API address is advertised in the framework's label <see cref="ApiLabel"/>,
/// where <c>schedctl job</c> finds it through <c>Operator.GetFrameworks</c>.
/// </summary>
public sealed class JobsHost : IAsyncDisposable
{
    /// <summary>The FrameworkInfo label holding the Jobs API address (host:port).</summary>
    public const string ApiLabel = "sched.jobs.api";

    /// <summary>How long an API call waits for this instance to become active when no other instance is.</summary>
    private static readonly TimeSpan ActivationWait = TimeSpan.FromSeconds(10);

    private readonly JobsHostOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly EtcdCoordination? _etcd;
    private readonly ILeaderElection _election;
    private readonly IRegistryStore _registry;
    private readonly CancellationTokenSource _stop = new();
    private readonly int _maxRecordsPerCommit;
    private readonly MasterDirectory _masters;
    private readonly Channels.GrpcChannelSettings _channel;
    private readonly TaskCompletionSource _activated = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private GrpcServer? _server;
    private volatile JobsTerm? _term;
    private Task _run = Task.CompletedTask;

    private JobsHost(JobsHostOptions options, ILogger logger, TimeProvider time, EtcdCoordination? etcd, ILeaderElection election, IRegistryStore registry, int maxRecordsPerCommit, string address)
    {
        _options = options;
        _logger = logger;
        _time = time;
        _etcd = etcd;
        _election = election;
        _registry = registry;
        _maxRecordsPerCommit = maxRecordsPerCommit;
        Address = address;
        _channel = new Channels.GrpcChannelSettings { Tls = Channels.Tls.ClientTls.FromFiles(options.Tls), BearerToken = NonEmpty(options.Token) };
        _masters = new MasterDirectory(options.Masters, _channel);
    }

    /// <summary>The Jobs API address (host:port).</summary>
    public string Address { get; }

    /// <summary>Whether this instance is the active one now.</summary>
    public bool IsActive => _term is not null;

    /// <summary>Ends when the host stops (disposed), the master removed the framework, or (a single instance) its state could not be used.</summary>
    public Task Completion => _run;

    public static async Task<JobsHost> StartAsync(JobsHostOptions options, ILoggerFactory loggers, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggers);
        options.Validate();
        time ??= TimeProvider.System;
        var logger = loggers.CreateLogger("Scheduler.Jobs");
        JobsHost? host = null;
        // The API is served over TLS when the framework holds a certificate of its own.
        var serverTls = options.Tls is { Certificate.Length: > 0, Key.Length: > 0, Ca.Length: > 0 } ? ServerTls.FromFiles(options.Tls) : null;
        var serverOptions = new GrpcServerOptions { LoggerFactory = loggers, Tls = serverTls };
        serverOptions.Endpoints.Add(new GrpcEndpoint(options.Listen));
        var server = await GrpcServer.StartAsync(serverOptions, new GrpcServices().Add(new JobsService(ct => host!.CurrentTermAsync(ct), new JobsApiAuthorizer([.. options.Masters], options.Token, time))), cancellationToken);
        EtcdCoordination? etcd = null;
        try
        {
            var bound = server.BoundEndpoints[0];
            var address = options.Advertise ?? $"{bound.Address}:{bound.Port.ToString(CultureInfo.InvariantCulture)}";
            var self = new MasterInfo
            {
                Id = Guid.NewGuid().ToString("N"),
                Address = address,
                Hostname = Environment.MachineName,
                StartTime = time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0,
            };
            ILeaderElection election;
            IRegistryStore registry;
            var maxRecords = int.MaxValue;
            if (options.EtcdEndpoints.Count > 0)
            {
                var etcdOptions = new EtcdCoordinationOptions
                {
                    Root = options.EtcdRoot,
                    LeaseTtl = options.LeaseTtl,
                    Username = options.EtcdUsername,
                    Password = options.EtcdPassword,
                };
                etcd = new EtcdCoordination(options.EtcdEndpoints, etcdOptions);
                election = etcd.CreateElection(self);
                registry = etcd.CreateStore();
                maxRecords = etcdOptions.MaxTxnOps;
            }
            else
            {
                registry = FileRegistryStore.Open(options.WorkDir);
                election = new StandaloneElection(self);
            }
            host = new JobsHost(options, logger, time, etcd, election, registry, maxRecords, address) { _server = server };
        }
        catch
        {
            etcd?.Dispose();
            await server.DisposeAsync();
            throw;
        }
        host._run = Task.Run(host.RunAsync, CancellationToken.None);
        if (!host._election.Replicated)
        {
            // A single instance is active at once: it is ready when its state is loaded (or the
            // state cannot be used, which ends the start with that error).
            await Task.WhenAny(host._activated.Task, host._run);
            if (host._run.IsFaulted)
            {
                var failure = host._run.Exception!.InnerException!;
                await host.DisposeAsync();
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
            }
        }
        JobsLog.Listening(logger, host.Address);
        return host;
    }

    /// <summary>
    /// The active term for an API call. A call that arrives while this instance is starting or an
    /// election is under way waits for it (up to <see cref="ActivationWait"/>); on a standby it
    /// fails at once with UNAVAILABLE and the active instance's address.
    /// </summary>
    private async Task<JobsTerm> CurrentTermAsync(CancellationToken cancellationToken)
    {
        var waitUntil = _time.GetUtcNow() + ActivationWait;
        while (true)
        {
            if (_term is { } term)
            {
                return term;
            }
            var leader = _election.CurrentLeader?.Address;
            var other = leader is { Length: > 0 } && leader != Address ? leader : null;
            if (other is not null || _time.GetUtcNow() >= waitUntil || _run.IsCompleted)
            {
                var detail = other is not null
                    ? $"this jobs instance ({Address}) is standing by; the active one is at {other}"
                    : $"this jobs instance ({Address}) is not active (loading its state or waiting to be elected); try again shortly";
                var trailers = new Grpc.Core.Metadata();
                if (other is not null)
                {
                    trailers.Add(MetadataKeys.Leader, other);
                }
                throw new Grpc.Core.RpcException(new Grpc.Core.Status(Grpc.Core.StatusCode.Unavailable, detail), trailers);
            }
            await Task.Delay(TimeSpan.FromMilliseconds(50), _time, cancellationToken);
        }
    }

    private async Task RunAsync()
    {
        var stop = _stop.Token;
        var retry = TimeSpan.FromMilliseconds(200);
        while (!stop.IsCancellationRequested)
        {
            Leadership leadership;
            try
            {
                JobsLog.Campaigning(_logger, Address, _election.CurrentLeader?.Address ?? "none");
                leadership = await _election.CampaignAsync(stop);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            JobsLog.Active(_logger, Address, leadership.Term);
            bool removed;
            try
            {
                removed = await RunTermAsync(leadership, stop);
            }
            catch (Exception e) when (_election.Replicated && !stop.IsCancellationRequested)
            {
                // The store failed or the leadership ended mid-way: stand by and campaign again.
                JobsLog.TermFailed(_logger, e);
                removed = false;
            }
            if (removed || stop.IsCancellationRequested || !_election.Replicated)
            {
                return;
            }
            await _election.ResignAsync(CancellationToken.None);
            JobsLog.StandingBy(_logger, Address);
            try
            {
                await Task.Delay(retry, _time, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            retry = TimeSpan.FromMilliseconds(Math.Min(5000, retry.TotalMilliseconds * 2));
        }
    }

    /// <summary>One term as the active instance; true when it ended because the master removed the framework.</summary>
    private async Task<bool> RunTermAsync(Leadership leadership, CancellationToken stop)
    {
        using var term = CancellationTokenSource.CreateLinkedTokenSource(stop, leadership.Lost);
        var (store, state) = await JobStateStore.LoadAsync(_registry, _options.WorkDir, _maxRecordsPerCommit, term.Token);
        var engine = new JobsEngine(store, state, _time, _logger);
        var info = new FrameworkInfo
        {
            Id = engine.FrameworkId ?? "",
            Name = _options.FrameworkName,
            FailoverTimeoutSeconds = _options.FailoverTimeout.TotalSeconds,
            Capabilities = { FrameworkCapability.MultiRole, FrameworkCapability.PartitionAware, FrameworkCapability.TaskKillingState },
            WebuiUrl = $"grpc://{Address}",
        };
        info.Roles.Add(engine.Roles().DefaultIfEmpty("default"));
        info.Labels.Add(new Label { Key = ApiLabel, Value = Address });
        var framework = new JobsFramework(engine, info, _time, _logger, ReadQuotaViewAsync);
        var driver = new SchedulerDriver(framework, new SchedulerClientOptions
        {
            Masters = _options.Masters,
            Channel = _channel,
            Framework = info,
            Logger = _logger,
            TimeProvider = _time,
            Token = NonEmpty(_options.Token),
        });
        await using (driver)
        {
            _term = new JobsTerm(engine, framework, driver.Client);
            _activated.TrySetResult();
            try
            {
                var clock = framework.RunClockAsync(driver.Client, _options.Tick, term.Token);
                await driver.RunAsync(term.Token);
                var removed = !term.IsCancellationRequested;
                await term.CancelAsync();
                try
                {
                    await clock;
                }
                catch (OperationCanceledException)
                {
                }
                if (leadership.Lost.IsCancellationRequested && !stop.IsCancellationRequested)
                {
                    JobsLog.LeadershipLost(_logger, Address, leadership.Term);
                }
                return removed;
            }
            finally
            {
                _term = null;
            }
        }
    }

    private static string? NonEmpty(string? token) => string.IsNullOrWhiteSpace(token) ? null : token.Trim();

    /// <summary>The masters' roles and quotas, for the reasons of pending instances.</summary>
    private async Task<QuotaShortfall> ReadQuotaViewAsync(CancellationToken cancellationToken)
    {
        var roles = await _masters.CallAsync(OperatorMethods.GetRoles, new GetRolesRequest(), TimeSpan.FromSeconds(5), cancellationToken);
        var quotas = await _masters.CallAsync(OperatorMethods.GetQuota, new GetQuotaRequest(), TimeSpan.FromSeconds(5), cancellationToken);
        return new QuotaShortfall(roles, quotas);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _run;
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e)
        {
            JobsLog.TermFailed(_logger, e);
        }
        // Resigning revokes the lease at once: a standby takes over without waiting for the TTL.
        await _election.DisposeAsync();
        await _registry.DisposeAsync();
        _etcd?.Dispose();
        _masters.Dispose();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
        _stop.Dispose();
    }
}

/// <summary>What the Jobs API works on while this instance is active.</summary>
internal sealed record JobsTerm(JobsEngine Engine, JobsFramework Framework, SchedulerClient Client);
