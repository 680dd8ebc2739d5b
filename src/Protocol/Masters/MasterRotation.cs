namespace Scheduler.Protocol.Masters;

/// <summary>
/// Which master a client (framework SDK, CLI, agent) talks to: starts with the first configured
/// master, follows <c>sched-leader</c> hints, and otherwise cycles through the configured list.
/// A hint naming the master that last failed is not followed: after a leader dies, its followers
/// keep naming it until its lease expires, and following them would only bounce between the dead
/// leader and the live followers. Also counts the connection failures of the current round
/// through the list, so that callers can retry quickly within a round and back off after it.
/// Decisions only (no I/O, no clock, no delays). Not thread-safe: callers serialise access.
/// </summary>
public sealed class MasterRotation
{
    private readonly string[] _configured;
    private int _cursor;
    private string? _chosen;
    private string? _lastFailed;
    private int _failuresInRound;

    /// <summary>Creates a rotation over <paramref name="masters"/>: trimmed, blanks and
    /// duplicates dropped; at least one <c>host:port</c> must remain.</summary>
    /// <exception cref="ArgumentException">No master address is given.</exception>
    public MasterRotation(IEnumerable<string> masters)
    {
        ArgumentNullException.ThrowIfNull(masters);
        _configured = [.. masters.Select(m => m?.Trim() ?? "").Where(m => m.Length > 0).Distinct(StringComparer.Ordinal)];
        if (_configured.Length == 0)
        {
            throw new ArgumentException("At least one master address (host:port) is needed.", nameof(masters));
        }
    }

    /// <summary>The configured addresses, in order.</summary>
    public IReadOnlyList<string> Configured => _configured;

    /// <summary>The master to talk to now: a followed or learned leader, else the configured
    /// master the cycle is at.</summary>
    public string Current => _chosen ?? _configured[_cursor];

    /// <summary>The master whose failure was reported last (until <see cref="Connected"/>).</summary>
    public string? LastFailed => _lastFailed;

    /// <summary>Connection failures reported since the current round through the list began.</summary>
    public int FailuresInRound => _failuresInRound;

    /// <summary>
    /// The live master <paramref name="answeredBy"/> does not lead and named
    /// <paramref name="leader"/> (possibly null or empty). Follows the hint unless it is empty,
    /// names <paramref name="answeredBy"/> itself, or names the master that last failed; then
    /// moves to the next configured master instead. A live answer starts a new round.
    /// </summary>
    /// <returns>True when the hint was followed.</returns>
    public bool Redirected(string answeredBy, string? leader)
    {
        _failuresInRound = 0;
        var hint = leader?.Trim();
        if (string.IsNullOrEmpty(hint) || hint == _lastFailed || hint == answeredBy)
        {
            Advance();
            return false;
        }
        _chosen = hint;
        return true;
    }

    /// <summary>
    /// Connecting to, or talking with, <paramref name="address"/> failed: remembers it (so that a
    /// stale hint naming it is not followed) and moves to the next configured master.
    /// </summary>
    /// <returns>True when this failure completes a round: as many consecutive failures as there
    /// are configured masters, with no live answer between them. The count then starts afresh.</returns>
    public bool Failed(string address)
    {
        _lastFailed = address;
        Advance();
        if (++_failuresInRound < _configured.Length)
        {
            return false;
        }
        _failuresInRound = 0;
        return true;
    }

    /// <summary>Talks to <paramref name="leader"/> from now on (learned, e.g. from
    /// <c>Subscribed.master</c>); a blank address is ignored. The cycle position is kept.</summary>
    public void Learned(string? leader)
    {
        if (!string.IsNullOrWhiteSpace(leader))
        {
            _chosen = leader.Trim();
        }
    }

    /// <summary>A session was established: the round count and the last failure are forgotten.</summary>
    public void Connected()
    {
        _failuresInRound = 0;
        _lastFailed = null;
    }

    private void Advance()
    {
        _cursor = (_cursor + 1) % _configured.Length;
        _chosen = null;
    }
}
