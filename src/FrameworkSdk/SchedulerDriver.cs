using Microsoft.Extensions.Logging;
using Sched.V1;

namespace Scheduler.FrameworkSdk;

/// <summary>
/// Runs an <see cref="IScheduler"/>: owns a <see cref="SchedulerClient"/>, reads its events and
/// calls the matching callback, one at a time. Status updates are acknowledged after
/// <see cref="IScheduler.OnUpdateAsync"/> returns (with auto-acknowledge on).
/// </summary>
/// <example>
/// <code>
/// await using var driver = new SchedulerDriver(new MyScheduler(), options);
/// await driver.RunAsync(cancellationToken);
/// </code>
/// </example>
public sealed class SchedulerDriver : IAsyncDisposable
{
    private readonly IScheduler _scheduler;
    private readonly ILogger _logger;

    /// <summary>Creates a driver and its client (not connected until <see cref="RunAsync"/>).</summary>
    /// <param name="scheduler">The callbacks.</param>
    /// <param name="options">The client options.</param>
    public SchedulerDriver(IScheduler scheduler, SchedulerClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentNullException.ThrowIfNull(options);
        _scheduler = scheduler;
        _logger = options.Logger;
        Client = new SchedulerClient(options);
    }

    /// <summary>The connection, for calls from outside the callbacks.</summary>
    public SchedulerClient Client { get; }

    /// <summary>
    /// Subscribes and dispatches events until <paramref name="cancellationToken"/> is cancelled,
    /// the framework is torn down, or the master removes it (after <see cref="IScheduler.OnErrorAsync"/>).
    /// An exception thrown by a callback is logged and does not stop the driver.
    /// </summary>
    /// <param name="cancellationToken">Stops the driver (the framework stays registered until
    /// its failover timeout).</param>
    public async Task RunAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            await foreach (var notification in Client.ReadNotificationsAsync(cancellationToken).ConfigureAwait(false))
            {
                try
                {
                    await DispatchAsync(notification, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    SdkLog.CallbackFailed(_logger, e);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Stops the client (see <see cref="SchedulerClient.DisposeAsync"/>).</summary>
    public ValueTask DisposeAsync() => Client.DisposeAsync();

    private Task DispatchAsync(SchedulerNotification notification, CancellationToken ct)
    {
        if (notification.Disconnected is { } reason)
        {
            return _scheduler.OnDisconnectedAsync(Client, reason, ct);
        }
        var e = notification.Event!;
        return e.EventCase switch
        {
            Event.EventOneofCase.Subscribed => _scheduler.OnSubscribedAsync(Client, e.Subscribed, ct),
            Event.EventOneofCase.Offers => _scheduler.OnOffersAsync(Client, e.Offers.Offers_, ct),
            Event.EventOneofCase.Rescind => _scheduler.OnRescindAsync(Client, e.Rescind.OfferId, ct),
            Event.EventOneofCase.Update => _scheduler.OnUpdateAsync(Client, e.Update.Status, ct),
            Event.EventOneofCase.Updates => DispatchUpdatesAsync(e.Updates, ct),
            Event.EventOneofCase.Message => _scheduler.OnMessageAsync(Client, e.Message, ct),
            Event.EventOneofCase.Failure => _scheduler.OnFailureAsync(Client, e.Failure, ct),
            Event.EventOneofCase.Error when Client.TearingDown => Task.CompletedTask,
            Event.EventOneofCase.Error => _scheduler.OnErrorAsync(Client, e.Error.Message, ct),
            _ => Task.CompletedTask,
        };
    }

    private async Task DispatchUpdatesAsync(Event.Types.Updates updates, CancellationToken ct)
    {
        foreach (var status in updates.Statuses)
        {
            await _scheduler.OnUpdateAsync(Client, status, ct).ConfigureAwait(false);
        }
    }
}
