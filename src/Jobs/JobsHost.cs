using System.Globalization;
using Microsoft.Extensions.Logging;
using Sched.V1;
using Scheduler.FrameworkSdk;
using Scheduler.Hosting;
using Scheduler.Jobs.Api;
using Scheduler.Jobs.Engine;
using Scheduler.Jobs.State;

namespace Scheduler.Jobs;

/// <summary>
/// The jobs framework as a running service: the engine over its state file, the framework
/// subscribed to the masters (failing over to the saved framework id), and the Jobs API served
/// with <see cref="GrpcServer"/>. The API's address is advertised in the framework's label
/// <see cref="ApiLabel"/>, where <c>schedctl job</c> finds it through <c>Operator.GetFrameworks</c>.
/// </summary>
public sealed class JobsHost : IAsyncDisposable
{
    /// <summary>The FrameworkInfo label holding the Jobs API address (host:port).</summary>
    public const string ApiLabel = "sched.jobs.api";

    private readonly SchedulerDriver _driver;
    private readonly GrpcServer _server;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _run;

    private JobsHost(SchedulerDriver driver, GrpcServer server, JobsFramework framework, string address, TimeSpan tick)
    {
        _driver = driver;
        _server = server;
        Address = address;
        _run = Task.WhenAll(driver.RunAsync(_stop.Token), framework.RunClockAsync(driver.Client, tick, _stop.Token).ContinueWith(_ => { }, TaskScheduler.Default));
    }

    /// <summary>The Jobs API address (host:port).</summary>
    public string Address { get; }

    /// <summary>Ends when the framework stops (cancelled, or removed by the master).</summary>
    public Task Completion => _run;

    public static async Task<JobsHost> StartAsync(JobsHostOptions options, ILoggerFactory loggers, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggers);
        options.Validate();
        time ??= TimeProvider.System;
        var logger = loggers.CreateLogger("Scheduler.Jobs");
        var engine = new JobsEngine(new JobStateStore(options.WorkDir), time, logger);
        var info = new FrameworkInfo
        {
            Id = engine.FrameworkId ?? "",
            Name = options.FrameworkName,
            FailoverTimeoutSeconds = options.FailoverTimeout.TotalSeconds,
            Capabilities = { FrameworkCapability.MultiRole, FrameworkCapability.PartitionAware, FrameworkCapability.TaskKillingState },
        };
        info.Roles.Add(engine.Roles().DefaultIfEmpty("default"));
        var framework = new JobsFramework(engine, info, time, logger);
        SchedulerDriver? driver = null;
        // The API is served over TLS when the framework holds a certificate of its own.
        var serverTls = options.Tls is { Certificate.Length: > 0, Key.Length: > 0, Ca.Length: > 0 } ? ServerTls.FromFiles(options.Tls) : null;
        var serverOptions = new GrpcServerOptions { LoggerFactory = loggers, Tls = serverTls };
        serverOptions.Endpoints.Add(new GrpcEndpoint(options.Listen));
        var server = await GrpcServer.StartAsync(serverOptions, new GrpcServices().Add(new JobsService(engine, framework, () => driver!.Client)), cancellationToken);
        var bound = server.BoundEndpoints[0];
        var address = options.Advertise ?? $"{bound.Address}:{bound.Port.ToString(CultureInfo.InvariantCulture)}";
        info.Labels.Add(new Label { Key = ApiLabel, Value = address });
        info.WebuiUrl = $"grpc://{address}";
        driver = new SchedulerDriver(framework, new SchedulerClientOptions
        {
            Masters = options.Masters,
            Channel = new Channels.GrpcChannelSettings { Tls = Channels.Tls.ClientTls.FromFiles(options.Tls) },
            Framework = info,
            Logger = logger,
            TimeProvider = time,
        });
        JobsLog.Listening(logger, address);
        return new JobsHost(driver, server, framework, address, options.Tick);
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
        await _driver.DisposeAsync();
        await _server.DisposeAsync();
        _stop.Dispose();
    }
}
