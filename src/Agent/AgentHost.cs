using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Scheduler.Hosting;

namespace Scheduler.Agent;

/// <summary>Runs an agent daemon in-process on the generic host (what <c>schedctl agent run</c> calls).</summary>
public static class AgentHost
{
    /// <summary>Runs an agent until <paramref name="cancellationToken"/> is cancelled.</summary>
    /// <returns>0 on a clean stop; 2 for bad options or a work dir in use; 3/4 when the master refuses the agent.</returns>
    public static async Task<int> RunAsync(AgentOptions options, CancellationToken cancellationToken)
        => await RunAsync(options, NullLoggerFactory.Instance, cancellationToken);

    /// <param name="loggerFactory">Where the agent logs (owned by the caller).</param>
    /// <param name="announcements">Where the agent announces what it does and why it stops; null: nowhere.</param>
    public static async Task<int> RunAsync(AgentOptions options, ILoggerFactory loggerFactory, CancellationToken cancellationToken, DaemonAnnouncements? announcements = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddSingleton(loggerFactory);
        announcements ??= new DaemonAnnouncements();
        builder.Services.AddSingleton(announcements);
        // The gRPC server runs its own web host, which reports the application's start and stop;
        // this outer host would report them a second time.
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        builder.Services.AddSchedulerAgent(options.CopyTo);
        using var host = builder.Build();
        AgentDaemon? daemon = null;
        try
        {
            daemon = host.Services.GetRequiredService<AgentDaemon>();
            await host.RunAsync(cancellationToken);
        }
        catch (OptionsValidationException e)
        {
            foreach (var problem in e.Failures)
            {
                announcements.Complain("agent: " + problem);
            }
            return 2;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        return daemon?.ExitCode ?? 0;
    }
}
