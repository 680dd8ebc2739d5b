namespace Scheduler.FrameworkSdk;

/// <summary>
/// The framework cannot go on as asked: the master removed it or refused its subscription, or a
/// call was made while no subscription could be established in time. The message says why and
/// what to do.
/// </summary>
public sealed class SchedulerException : Exception
{
    /// <summary>Creates an exception with no message.</summary>
    public SchedulerException()
    {
    }

    /// <summary>Creates an exception with a message.</summary>
    /// <param name="message">What went wrong and what to do.</param>
    public SchedulerException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an exception with a message and its cause.</summary>
    /// <param name="message">What went wrong and what to do.</param>
    /// <param name="innerException">The cause.</param>
    public SchedulerException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
