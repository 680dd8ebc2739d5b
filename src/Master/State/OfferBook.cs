using Sched.V1;

namespace Scheduler.Master.State;

/// <summary>
/// Outstanding offers by id, framework and agent, plus a bounded memory of retired offer ids and
/// why they retired, so that a late Accept can be told precisely what happened to its offer.
/// </summary>
public sealed class OfferBook
{
    private const int RetiredCapacity = 50_000;

    private readonly Dictionary<string, OutstandingOffer> _offers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _retired = new(StringComparer.Ordinal);
    private readonly Queue<string> _retiredOrder = new();
    private readonly Dictionary<string, HashSet<OutstandingOffer>> _byAgent = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<OutstandingOffer>> _byFramework = new(StringComparer.Ordinal);
    private long _next;

    public int Count => _offers.Count;

    public IEnumerable<OutstandingOffer> All => _offers.Values;

    public string NextId(string masterPrefix) => $"{masterPrefix}-O{++_next}";

    public void Add(OutstandingOffer offer)
    {
        _offers.Add(offer.Offer.Id, offer);
        Index(_byAgent, offer.Offer.AgentId).Add(offer);
        Index(_byFramework, offer.Offer.FrameworkId).Add(offer);
    }

    public bool TryGet(string id, out OutstandingOffer offer) => _offers.TryGetValue(id, out offer!);

    /// <summary>Why a no-longer-outstanding offer id retired (used, declined, rescinded…), or null if never seen.</summary>
    public string? RetiredReason(string id) => _retired.GetValueOrDefault(id);

    /// <summary>Removes an outstanding offer, remembering why.</summary>
    public OutstandingOffer? Retire(string id, string reason)
    {
        if (!_offers.Remove(id, out var offer))
        {
            return null;
        }
        Unindex(_byAgent, offer.Offer.AgentId, offer);
        Unindex(_byFramework, offer.Offer.FrameworkId, offer);
        _retired[id] = reason;
        _retiredOrder.Enqueue(id);
        while (_retiredOrder.Count > RetiredCapacity)
        {
            _retired.Remove(_retiredOrder.Dequeue());
        }
        return offer;
    }

    /// <summary>
    /// The outstanding offers among <paramref name="ids"/> that belong to
    /// <paramref name="frameworkId"/>, and, if the list as a whole cannot be accepted, what is
    /// wrong, naming the offer: an id listed twice, unknown, retired (and why), another
    /// framework's, or offers on different agents. Changes nothing.
    /// </summary>
    public (List<OutstandingOffer> Offers, string? Problem) Usable(string frameworkId, IEnumerable<string> ids)
    {
        var offers = new List<OutstandingOffer>();
        string? problem = null;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var id in ids)
        {
            if (!seen.Add(id))
            {
                problem ??= $"offer {id} is listed twice in offer_ids; list each offer once";
                continue;
            }
            if (_offers.TryGetValue(id, out var offer))
            {
                if (offer.Offer.FrameworkId != frameworkId)
                {
                    problem ??= $"offer {id} belongs to another framework; use only offers sent to you";
                }
                else
                {
                    offers.Add(offer);
                }
                continue;
            }
            var retired = RetiredReason(id);
            problem ??= retired is null
                ? $"offer {id} is unknown to this master; use offer ids from Event.offers"
                : $"offer {id} is no longer valid: {retired}; wait for a new offer";
        }
        if (problem is null)
        {
            var agents = offers.Select(o => o.Offer.AgentId).Distinct(StringComparer.Ordinal).ToList();
            if (agents.Count > 1)
            {
                var a = offers.First(o => o.Offer.AgentId == agents[0]);
                var b = offers.First(o => o.Offer.AgentId == agents[1]);
                problem = $"offers {a.Offer.Id} (agent {agents[0]}) and {b.Offer.Id} (agent {agents[1]}) are on different agents; accept offers of one agent per call";
            }
        }
        return (offers, problem);
    }

    /// <summary>The outstanding offers on one agent (a copy: retiring them while iterating is fine).</summary>
    public List<OutstandingOffer> ForAgent(string agentId) => _byAgent.TryGetValue(agentId, out var set) ? [.. set] : [];

    /// <summary>The outstanding offers of one framework (a copy).</summary>
    public List<OutstandingOffer> ForFramework(string frameworkId) => _byFramework.TryGetValue(frameworkId, out var set) ? [.. set] : [];

    private static HashSet<OutstandingOffer> Index(Dictionary<string, HashSet<OutstandingOffer>> index, string key)
    {
        if (!index.TryGetValue(key, out var set))
        {
            index[key] = set = new HashSet<OutstandingOffer>(ReferenceEqualityComparer.Instance);
        }
        return set;
    }

    private static void Unindex(Dictionary<string, HashSet<OutstandingOffer>> index, string key, OutstandingOffer offer)
    {
        if (index.TryGetValue(key, out var set) && set.Remove(offer) && set.Count == 0)
        {
            index.Remove(key);
        }
    }
}

/// <summary>An offer and when it expires (offer timeout), if it does.</summary>
public sealed record OutstandingOffer(Offer Offer, DateTimeOffset? ExpiresAt);
