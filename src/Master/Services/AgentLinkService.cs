using Grpc.Core;
using Scheduler.Hosting;
using Sched.V1;
using Scheduler.Master.Loop;
using Scheduler.Master.State;

namespace Scheduler.Master.Services;

/// <summary><c>sched.v1.AgentLink</c>: one bidi stream per agent. Incoming messages are posted
/// to the master loop in order; outgoing ones are drained from the session's outbox.</summary>
public sealed class AgentLinkService(MasterRuntime runtime) : AgentLink.AgentLinkBase
{
    /// <summary>What an agent refused for want of a client certificate is told to present.</summary>
    internal const string CertificateHint = "start the agent with --tls-cert FILE --tls-key FILE (a certificate issued by the CA given to the master's --tls-ca)";

    public override async Task Connect(IAsyncStreamReader<AgentMessage> requestStream, IServerStreamWriter<MasterMessage> responseStream, ServerCallContext context)
    {
        // Over TLS only a holder of a certificate from the cluster's CA may be an agent.
        ClientCertificates.Require(context, CertificateHint);
        var caller = Security.MasterSecurity.CallerOf(context);
        runtime.Security.Demand(caller, Scheduler.Security.AclAction.RegisterAgent, "*");
        var term = MasterRuntime.TermOf(context);
        var loop = term.Loop;
        var session = loop.OpenAgentLink(caller.Principal);
        // One token for both halves: cancelled by the client, the server's stop, the end of this
        // leadership term, and the end of the drain (finally), so the reader never outlives the call.
        using var link = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, term.Lost);
        // The reader runs beside the drain without a Task.Run, a closure or a delegate.
        var reader = ReadAsync(requestStream, loop, session, link.Token);
        RpcException? refusal = null;
        try
        {
            await runtime.DrainLinkedAsync(term, session.Outbox, responseStream, link.Token);
        }
        finally
        {
            await link.CancelAsync();
            refusal = await reader;
        }
        if (refusal is not null)
        {
            throw refusal;
        }
    }

    /// <summary>Posts the agent's messages to the loop in order until the stream ends or
    /// <paramref name="cancellationToken"/> fires; then tells the loop the link closed. Returns
    /// the refusal of a message that did not parse (INVALID_ARGUMENT), for the call to end with.</summary>
    private static async Task<RpcException?> ReadAsync(IAsyncStreamReader<AgentMessage> requests, MasterLoop loop, AgentLinkSession session, CancellationToken cancellationToken)
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
        catch (RpcException e) when (e.StatusCode == StatusCode.InvalidArgument)
        {
            return e;
        }
        catch (Exception)
        {
            // A broken stream is the same as a closed one: the agent timeout decides.
        }
        finally
        {
            loop.Post(l => l.OnAgentLinkClosed(session));
        }
        return null;
    }
}
