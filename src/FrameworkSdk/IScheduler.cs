using Sched.V1;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.FrameworkSdk;

/// <summary>
/// A framework scheduler's callbacks, run one at a time, in event order, by a
/// <see cref="SchedulerDriver"/>. Every method has a do-nothing default: implement the ones you
/// need. The <see cref="SchedulerClient"/> argument makes calls back to the master.
/// </summary>
public interface IScheduler
{
    /// <summary>The framework is subscribed (first time, or again after a reconnection or master
    /// failover). Reconcile here if you keep task state.</summary>
    /// <param name="client">The connection.</param>
    /// <param name="subscribed">Framework id, stream id, heartbeat interval, master.</param>
    /// <param name="cancellationToken">Cancelled when the driver stops.</param>
    Task OnSubscribedAsync(SchedulerClient client, Event.Types.Subscribed subscribed, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>New offers. Accept (launch) or decline each; unanswered offers hold resources
    /// until rescinded.</summary>
    /// <param name="client">The connection.</param>
    /// <param name="offers">The offers.</param>
    /// <param name="cancellationToken">Cancelled when the driver stops.</param>
    Task OnOffersAsync(SchedulerClient client, IReadOnlyList<Offer> offers, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>An offer is no longer valid (its agent left, it timed out, or the master
    /// reclaimed it); using it now drops the tasks.</summary>
    /// <param name="client">The connection.</param>
    /// <param name="offerId">The rescinded offer.</param>
    /// <param name="cancellationToken">Cancelled when the driver stops.</param>
    Task OnRescindAsync(SchedulerClient client, string offerId, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>A task status update. With auto-acknowledge on, it is acknowledged when this
    /// returns; updates may be delivered more than once.</summary>
    /// <param name="client">The connection.</param>
    /// <param name="status">The update.</param>
    /// <param name="cancellationToken">Cancelled when the driver stops.</param>
    Task OnUpdateAsync(SchedulerClient client, TaskStatus status, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Data sent by an executor.</summary>
    /// <param name="client">The connection.</param>
    /// <param name="message">Agent, executor and payload.</param>
    /// <param name="cancellationToken">Cancelled when the driver stops.</param>
    Task OnMessageAsync(SchedulerClient client, Event.Types.Message message, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>An executor or agent failed.</summary>
    /// <param name="client">The connection.</param>
    /// <param name="failure">Agent, executor and status.</param>
    /// <param name="cancellationToken">Cancelled when the driver stops.</param>
    Task OnFailureAsync(SchedulerClient client, Event.Types.Failure failure, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The framework cannot continue (the master removed it or refused it). The driver
    /// stops after this callback.</summary>
    /// <param name="client">The connection.</param>
    /// <param name="message">What happened.</param>
    /// <param name="cancellationToken">Cancelled when the driver stops.</param>
    Task OnErrorAsync(SchedulerClient client, string message, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The subscription was lost; the client is already reconnecting and
    /// <see cref="OnSubscribedAsync"/> follows when it is back. Outstanding offers are void.</summary>
    /// <param name="client">The connection.</param>
    /// <param name="reason">Why (missed heartbeats, master closed the stream, …).</param>
    /// <param name="cancellationToken">Cancelled when the driver stops.</param>
    Task OnDisconnectedAsync(SchedulerClient client, string reason, CancellationToken cancellationToken) => Task.CompletedTask;
}
