using Sched.V1;
using Scheduler.Master.Loop;
using Scheduler.Master.State;
using Scheduler.Protocol;
using Scheduler.Rpc;

namespace Scheduler.Master.Services;

/// <summary><c>sched.v1.AgentLink</c>: one bidi stream per agent. Incoming messages are posted
/// to the master loop in order; outgoing ones are drained from the session's outbox.</summary>
public sealed class AgentLinkService(MasterRuntime runtime)
{
    public void Map(ServiceRegistry registry) => registry.AddDuplexStreaming(AgentLinkMethods.Connect, ConnectAsync);

    private async Task ConnectAsync(IAsyncStreamReader<AgentMessage> requests, IServerStreamWriter<MasterMessage> responses, ServerCallContext context)
    {
        var term = runtime.Require();
        var loop = term.Loop;
        var session = loop.OpenAgentLink();
        // One token for both halves: the call's own, which the client, the server's stop, the
        // end of this leadership term (in the drain) and the end of the drain (finally) all
        // cancel. A master keeps this per connected agent for as long as the agent stays, so no
        // linked source of its own, and the reads pass the call's token, which costs nothing per read.
        // The reader runs beside the drain without a Task.Run, a closure or a delegate.
        var reader = ReadAsync(requests, loop, session, context.CancellationToken);
        try
        {
            await runtime.DrainAsync(term, session.Outbox, responses, context);
        }
        finally
        {
            context.Cancel();
            await reader;
        }
    }

    /// <summary>Posts the agent's messages to the loop in order until the stream ends or
    /// <paramref name="cancellationToken"/> fires; then tells the loop the link closed.</summary>
    private static async Task ReadAsync(IAsyncStreamReader<AgentMessage> requests, MasterLoop loop, AgentLinkSession session, CancellationToken cancellationToken)
    {
        // Continue off the handler's thread at once, so the drain starts even when messages are
        // already buffered.
        await Task.Yield();
        try
        {
            while (await requests.MoveNext(cancellationToken))
            {
                loop.Receive(session, requests.Current);
            }
        }
        catch (Exception)
        {
            // A broken stream is the same as a closed one: the agent timeout decides.
        }
        finally
        {
            loop.Post(l => l.OnAgentLinkClosed(session));
        }
    }
}
