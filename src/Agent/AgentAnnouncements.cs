namespace Scheduler.Agent;

/// <summary>
/// Where the agent daemon tells whoever started it what it does, one line each: <c>agent
/// listening on HOST:PORT</c>, <c>agent metrics on URL</c>, <c>agent registered as ID</c> (which
/// <c>schedctl dev up</c> reads from its agents' output), and why it stops. The CLI gives the
/// console's writers; a host that gives none hears nothing (the library never writes to the console).
/// </summary>
public sealed class AgentAnnouncements(TextWriter? output = null, TextWriter? error = null)
{
    /// <summary>Announces progress on the output writer, flushed at once.</summary>
    public void Say(string line)
    {
        if (output is not null)
        {
            output.WriteLine(line);
            output.Flush();
        }
    }

    /// <summary>Reports why the agent cannot go on, on the error writer.</summary>
    public void Complain(string line)
    {
        if (error is not null)
        {
            error.WriteLine(line);
            error.Flush();
        }
    }
}
