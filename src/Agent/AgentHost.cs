using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
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

namespace Scheduler.Agent;

/// <summary>
/// The agent daemon: detects resources, serves AgentFiles on <see cref="AgentOptions.Listen"/>,
/// re-adopts checkpointed tasks, and keeps a link to the leading master until cancelled. Tasks
/// keep running (under their supervisors) when the agent stops.
/// </summary>
public static class AgentHost
{
    /// <summary>Runs an agent until <paramref name="cancellationToken"/> is cancelled.</summary>
    /// <returns>0 on a clean stop; 2 for bad options; 3/4 when the master refuses the agent.</returns>
    public static async Task<int> RunAsync(AgentOptions options, CancellationToken cancellationToken)
        => await RunAsync(options, NullLoggerFactory.Instance, cancellationToken);

    public static async Task<int> RunAsync(AgentOptions options, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            foreach (var p in problems)
            {
                await Console.Error.WriteLineAsync("agent: " + p);
            }
            return 2;
        }
        var log = loggerFactory.CreateLogger("Scheduler.Agent");
        Directory.CreateDirectory(options.WorkDir);
        WorkDirLock workDirLock;
        try
        {
            workDirLock = WorkDirLock.Acquire(options.WorkDir);
        }
        catch (WorkDirLockedException e)
        {
            await Console.Error.WriteLineAsync("agent: " + e.Message);
            return 2;
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
            await Console.Error.WriteLineAsync("agent: " + e.Message);
            return 2;
        }
        IIsolator isolator;
        try
        {
            isolator = Isolators.Create(options.Isolation, Isolators.ScopeFor(options.WorkDir));
        }
        catch (IsolationException e)
        {
            await Console.Error.WriteLineAsync("agent: " + e.Message);
            return 2;
        }
        log.LogInformation("isolation: {Isolator}", isolator.Name);

        await using var core = new AgentCore(options, isolator, ExecutorSet.CreateDefault(options, isolator, TimeProvider.System), TimeProvider.System, log);
        core.Recover();

        _ = Endpoints.TryParse(options.Listen, out var host, out var port);
        var address = host is "localhost" ? IPAddress.Loopback : IPAddress.TryParse(host, out var ip) ? ip : IPAddress.Any;
        using var metrics = string.IsNullOrEmpty(options.MetricsListen) ? null : new Telemetry.AgentMetrics(core);
        core.Metrics = metrics;
        var serverOptions = new GrpcServerOptions { LoggerFactory = loggerFactory };
        serverOptions.Endpoints.Add(new GrpcEndpoint(new IPEndPoint(address, port)));
        if (metrics is not null)
        {
            serverOptions.Interceptors.Add(new CallMetricsInterceptor(metrics.Meter, "sched.agent"));
        }
        var files = new AgentFilesService(core.SandboxesDir, TimeSpan.FromMilliseconds(200));
        var health = new HealthServiceImpl();
        health.SetStatus("", HealthCheckResponse.Types.ServingStatus.Serving);
        health.SetStatus(AgentFiles.Descriptor.FullName, HealthCheckResponse.Types.ServingStatus.Serving);
        await using var server = await GrpcServer.StartAsync(serverOptions, new GrpcServices().Add(files).Add(health), cancellationToken);
        files.Stopping = server.Stopping;
        var bound = server.BoundEndpoints[0];
        var advertised = $"{(address.Equals(IPAddress.Any) ? System.Net.Dns.GetHostName() : host)}:{bound.Port}";
        Console.Out.WriteLine($"agent listening on {host}:{bound.Port}");
        await using var scrape = metrics is null ? null : await MetricsEndpoint.StartAsync(options.MetricsListen!, [metrics.Meter], cancellationToken);
        if (scrape is not null)
        {
            Console.Out.WriteLine($"agent metrics on {scrape.Url}");
        }

        AgentInfo Info()
        {
            var info = new AgentInfo
            {
                Hostname = options.Hostname ?? System.Net.Dns.GetHostName(),
                Address = advertised,
                Version = typeof(AgentHost).Assembly.GetName().Version?.ToString() ?? "0",
                BootId = ProcFs.BootId(),
            };
            info.Resources.AddRange(resources);
            info.Attributes.AddRange(attributes);
            return info;
        }

        var link = new MasterLink(core, options, Info, log, TimeProvider.System, new Random());
        using var gc = new SandboxCollector(core, options, log).Start(cancellationToken);
        var code = await link.RunAsync(cancellationToken);
        await server.StopAsync();
        isolator.RemoveScopeIfEmpty();
        return code;
    }
}
