using Sched.V1;
using Scheduler.Master.State;
using Xunit;

namespace Scheduler.Master.Tests.State;

/// <summary>The offer book on its own: its indexes follow add and retire, and the offers of an
/// Accept are checked without changing anything.</summary>
public sealed class OfferBookTests
{
    private static OutstandingOffer Offer(OfferBook book, string fw, string agent) =>
        new(new Offer { Id = book.NextId("m"), FrameworkId = fw, AgentId = agent, Role = "r" }, null);

    [Fact]
    public void Retiring_an_offer_takes_it_out_of_every_index_and_remembers_why()
    {
        var book = new OfferBook();
        var offer = Offer(book, "f1", "a1");
        book.Add(offer);
        Assert.Equal([offer], book.ForAgent("a1"));
        Assert.Equal([offer], book.ForFramework("f1"));

        Assert.Same(offer, book.Retire(offer.Offer.Id, "it was declined"));

        Assert.Empty(book.ForAgent("a1"));
        Assert.Empty(book.ForFramework("f1"));
        Assert.Equal(0, book.Count);
        Assert.Equal("it was declined", book.RetiredReason(offer.Offer.Id));
        Assert.Null(book.Retire(offer.Offer.Id, "again"));
    }

    [Fact]
    public void Usable_offers_name_the_first_problem_and_change_nothing()
    {
        var book = new OfferBook();
        var mine = Offer(book, "f1", "a1");
        var mineToo = Offer(book, "f1", "a1");
        var onOtherAgent = Offer(book, "f1", "a2");
        var theirs = Offer(book, "f2", "a1");
        var declined = Offer(book, "f1", "a1");
        foreach (var o in new[] { mine, mineToo, onOtherAgent, theirs, declined })
        {
            book.Add(o);
        }
        book.Retire(declined.Offer.Id, "it was declined");

        var (offers, problem) = book.Usable("f1", [mine.Offer.Id, mineToo.Offer.Id]);
        Assert.Null(problem);
        Assert.Equal([mine, mineToo], offers);

        Assert.Contains("listed twice", book.Usable("f1", [mine.Offer.Id, mine.Offer.Id]).Problem, StringComparison.Ordinal);
        Assert.Contains("belongs to another framework", book.Usable("f1", [theirs.Offer.Id]).Problem, StringComparison.Ordinal);
        Assert.Contains("no longer valid: it was declined", book.Usable("f1", [declined.Offer.Id]).Problem, StringComparison.Ordinal);
        Assert.Contains("unknown to this master", book.Usable("f1", ["nope"]).Problem, StringComparison.Ordinal);
        var split = book.Usable("f1", [mine.Offer.Id, onOtherAgent.Offer.Id]);
        Assert.Contains("are on different agents", split.Problem, StringComparison.Ordinal);
        Assert.Equal(2, split.Offers.Count); // usable ones are handed back, for the caller to recover

        Assert.Equal(4, book.Count);
    }
}
