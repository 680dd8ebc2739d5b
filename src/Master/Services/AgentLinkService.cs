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
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, term.Lost);
        // The reader runs beside the drain without a Task.Run, a closure or a delegate: a master
        // keeps one of these per connected agent for as long as the agent stays.
        var reader = ReadAsync(requests, loop, session, cts.Token);
        try
        {
            await session.Outbox.DrainToAsync(responses, cts.Token);
        }
        catch (OperationCanceledException) when (term.Lost.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            throw MasterErrors.NotLeader(runtime.LeaderHint());
        }
        finally
        {
            await cts.CancelAsync();
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
