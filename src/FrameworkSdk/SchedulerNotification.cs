using Sched.V1;

namespace Scheduler.FrameworkSdk;

/// <summary>
/// One item of the client's inbox: an event from the master, or the news that the subscription
/// was lost (<see cref="Disconnected"/> says why; the client is already reconnecting).
/// </summary>
internal sealed record SchedulerNotification(Event? Event, string? Disconnected)
{
    public static SchedulerNotification Of(Event e) => new(e, null);

    public static SchedulerNotification Lost(string reason) => new(null, reason);
}
