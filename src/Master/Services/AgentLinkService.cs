using Sched.V1;
using Scheduler.Master.Loop;
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
        var reader = Task.Run(
            async () =>
            {
                try
                {
                    while (await requests.MoveNext(cts.Token))
                    {
                        var message = requests.Current;
                        loop.Receive(session, message);
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
            },
            CancellationToken.None);
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
}
