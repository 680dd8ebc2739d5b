using Google.Protobuf;
using Sched.V1;
using Scheduler.Master.State;
using Scheduler.Master.Telemetry;

namespace Scheduler.Master.Loop;

/// <summary>
/// Offers leave in events of bounded size. One allocation cycle may offer thousands of agents to
/// one framework, each offer with its agent's attributes: in one event that exceeds the gRPC
/// message limit, the write fails, the framework's stream ends, and after it re-subscribes the
/// next cycle builds the same event again. Events are therefore cut at a quarter of
/// <see cref="MasterOptions.MaxMessageSize"/>, and an offer that could never be sent, or that
/// could not be queued, is retired and its resources recovered at once rather than left
/// outstanding until a timeout that may never come.
/// </summary>
public sealed partial class MasterLoop
{
    /// <summary>The size an event of batched offers stays within (bytes).</summary>
    private int EventSizeBound => Math.Max(_options.MaxMessageSize / 4, 1);

    /// <summary>The size an operator answer page stays within (bytes): the events' bound.</summary>
    public int AnswerSizeBound => EventSizeBound;

    /// <summary>The largest single offer that can be sent: the limit less the event's framing.</summary>
    private int LargestOffer => _options.MaxMessageSize - 16;

    /// <summary>Sends <paramref name="offers"/> (all outstanding, all to <paramref name="fw"/>) in as
    /// few events as the size bound allows. Returns how many offers were retired unsent.</summary>
    private int SendOffers(FrameworkEntry fw, List<Offer> offers)
    {
        var retired = 0;
        var bound = EventSizeBound;
        var batch = new Event.Types.Offers();
        var batchSize = 0;
        foreach (var offer in offers)
        {
            var size = offer.CalculateSize();
            var framed = 1 + CodedOutputStream.ComputeLengthSize(size) + size;
            if (framed > LargestOffer)
            {
                MasterLog.OfferTooLarge(_logger, offer.Id, offer.AgentId, size, _options.MaxMessageSize);
                retired += RetireUnsent([offer], "it was larger than the largest message the master sends");
                continue;
            }
            if (batch.Offers_.Count > 0 && batchSize + framed > bound)
            {
                retired += Flush(batch);
                batch = new Event.Types.Offers();
                batchSize = 0;
            }
            batch.Offers_.Add(offer);
            batchSize += framed;
        }
        if (batch.Offers_.Count > 0)
        {
            retired += Flush(batch);
        }
        return retired;

        int Flush(Event.Types.Offers batch) =>
            fw.Subscription?.Outbox.Send(new Event { Offers = batch }) == true ? 0 : RetireUnsent(batch.Offers_, "the framework's stream closed before it could be sent");
    }

    /// <summary>Retires offers the framework never received and recovers their resources.</summary>
    private int RetireUnsent(IEnumerable<Offer> offers, string why)
    {
        var count = 0;
        foreach (var offer in offers)
        {
            if (_offers.Retire(offer.Id, why) is not null)
            {
                Recover(offer.FrameworkId, offer.AgentId, offer.Resources, null);
                count++;
            }
        }
        return count;
    }
}
