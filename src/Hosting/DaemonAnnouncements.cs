namespace Scheduler.Hosting;

/// <summary>
/// Where a daemon (master, agent) tells whoever started it what it does, one line each:
/// <c>master listening on HOST:PORT</c>, <c>agent metrics on URL</c>, <c>agent registered as ID</c>
/// (which <c>schedctl dev up</c> reads from its daemons' output), and why it stops. The CLI gives
/// the console's writers; a host that gives none hears nothing (the libraries never write to the
/// console).
/// </summary>
public sealed class DaemonAnnouncements(TextWriter? output = null, TextWriter? error = null)
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
