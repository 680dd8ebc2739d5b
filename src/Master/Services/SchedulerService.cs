using Grpc.Core;
using Sched.V1;
using Scheduler.Master.Loop;
using SchedulerBase = Sched.V1.Scheduler.SchedulerBase;

namespace Scheduler.Master.Services;

/// <summary><c>sched.v1.Scheduler</c>: translates framework calls into master commands, on the
/// leadership term the <see cref="LeaderInterceptor"/> found for the call.</summary>
public sealed class SchedulerService(MasterRuntime runtime) : SchedulerBase
{
    public override async Task<AcceptResponse> Accept(AcceptRequest request, ServerCallContext context)
    {
        // Resource operations answer once the registry holds their result.
        await await Invoke(context, l => l.Accept(request));
        return new AcceptResponse();
    }

    public override Task<DeclineResponse> Decline(DeclineRequest request, ServerCallContext context) => Invoke(context, l => l.Decline(request));

    public override Task<ReviveResponse> Revive(ReviveRequest request, ServerCallContext context) => Invoke(context, l => l.Revive(request));

    public override Task<SuppressResponse> Suppress(SuppressRequest request, ServerCallContext context) => Invoke(context, l => l.Suppress(request));

    public override Task<KillResponse> Kill(KillRequest request, ServerCallContext context) => Invoke(context, l => l.Kill(request));

    public override Task<AcknowledgeResponse> Acknowledge(AcknowledgeRequest request, ServerCallContext context) => Invoke(context, l => l.Acknowledge(request));

    public override Task<ReconcileResponse> Reconcile(ReconcileRequest request, ServerCallContext context) => Invoke(context, l => l.Reconcile(request));

    public override Task<MessageResponse> Message(MessageRequest request, ServerCallContext context) => Invoke(context, l => l.Message(request));

    public override Task<TeardownResponse> Teardown(TeardownRequest request, ServerCallContext context) => Invoke(context, l => l.Teardown(request));

    public override Task<UpdateFrameworkResponse> UpdateFramework(UpdateFrameworkRequest request, ServerCallContext context)
    {
        var caller = Security.MasterSecurity.CallerOf(context);
        return Invoke(context, l => l.UpdateFramework(request, caller));
    }

    public override async Task Subscribe(SubscribeRequest request, IServerStreamWriter<Event> responseStream, ServerCallContext context)
    {
        var term = MasterRuntime.TermOf(context);
        var caller = Security.MasterSecurity.CallerOf(context);
        var (frameworkId, subscription) = await term.Loop.InvokeAsync(l =>
        {
            var sub = l.Subscribe(request, caller);
            return (sub.Outbox.TryPeek(out var first) ? first.Subscribed.FrameworkId : "", sub);
        });
        try
        {
            await runtime.DrainAsync(term, subscription.Outbox, responseStream, context.CancellationToken);
        }
        finally
        {
            term.Loop.Post(l => l.OnSubscriptionClosed(frameworkId, subscription));
        }
    }

    private Task<T> Invoke<T>(ServerCallContext context, Func<MasterLoop, T> body) => MasterRuntime.TermOf(context).Loop.InvokeAsync(body);
}
