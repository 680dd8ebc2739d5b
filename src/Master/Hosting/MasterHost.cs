using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Scheduler.Hosting;

namespace Scheduler.Master;

/// <summary>Runs a master daemon in-process (what <c>schedctl master run</c> calls).</summary>
public static class MasterHost
{
    /// <summary>Runs a master until <paramref name="ct"/> is cancelled. Returns 0 after a clean
    /// stop, 2 for invalid options, 1 when the master failed.</summary>
    /// <param name="logging">How to log; null: single-line console lines with UTC timestamps on stderr.</param>
    /// <param name="announcements">Where the <c>master listening on</c> lines and the reason of a
    /// failed start go (the CLI gives the console); null: nowhere.</param>
    public static async Task<int> RunAsync(MasterOptions options, CancellationToken ct, Action<ILoggingBuilder>? logging = null,
        DaemonAnnouncements? announcements = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        announcements ??= new DaemonAnnouncements();
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        if (logging is not null)
        {
            logging(builder.Logging);
        }
        else
        {
            builder.Logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z' ";
            });
            builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
            builder.Logging.SetMinimumLevel(LogLevel.Information);
        }
        // The gRPC server runs its own web host, which reports the application's start and stop;
        // this outer host would report them a second time.
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        builder.Services.AddSingleton(announcements);
        builder.Services.AddSchedulerMaster(options.CopyTo);
        using var host = builder.Build();
        MasterDaemon? daemon = null;
        try
        {
            // RunAsync disposes the host: keep the daemon to read its outcome afterwards.
            daemon = host.Services.GetRequiredService<MasterDaemon>();
            await host.RunAsync(ct);
        }
        catch (OptionsValidationException e)
        {
            announcements.Complain($"master: invalid options: {string.Join(" ", e.Failures)}");
            return 2;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            announcements.Complain($"master: {e.Message}");
            return 1;
        }
        if (daemon?.Failure is { } failure)
        {
            announcements.Complain($"master failed: {failure.Message}");
            return 1;
        }
        return 0;
    }
}
