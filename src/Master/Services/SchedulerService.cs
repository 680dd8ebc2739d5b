using Sched.V1;
using Scheduler.Master.Loop;
using Scheduler.Protocol;
using Scheduler.Rpc;

namespace Scheduler.Master.Services;

/// <summary><c>sched.v1.Scheduler</c>: translates framework calls into master commands.</summary>
public sealed class SchedulerService(MasterRuntime runtime)
{
    public void Map(ServiceRegistry registry)
    {
        registry.AddServerStreaming(SchedulerMethods.Subscribe, SubscribeAsync);
        registry.AddUnary(SchedulerMethods.Accept, async (r, _) =>
        {
            // Resource operations answer once the registry holds their result.
            await await Invoke(l => l.Accept(r));
            return new AcceptResponse();
        });
        registry.AddUnary(SchedulerMethods.Decline, (r, _) => Invoke(l => l.Decline(r)));
        registry.AddUnary(SchedulerMethods.Revive, (r, _) => Invoke(l => l.Revive(r)));
        registry.AddUnary(SchedulerMethods.Suppress, (r, _) => Invoke(l => l.Suppress(r)));
        registry.AddUnary(SchedulerMethods.Kill, (r, _) => Invoke(l => l.Kill(r)));
        registry.AddUnary(SchedulerMethods.Acknowledge, (r, _) => Invoke(l => l.Acknowledge(r)));
        registry.AddUnary(SchedulerMethods.Reconcile, (r, _) => Invoke(l => l.Reconcile(r)));
        registry.AddUnary(SchedulerMethods.Message, (r, _) => Invoke(l => l.Message(r)));
        registry.AddUnary(SchedulerMethods.Teardown, (r, _) => Invoke(l => l.Teardown(r)));
        registry.AddUnary(SchedulerMethods.UpdateFramework, (r, _) => Invoke(l => l.UpdateFramework(r)));
    }

    private Task<T> Invoke<T>(Func<MasterLoop, T> body) => runtime.Require().Loop.InvokeAsync(body);

    private async Task SubscribeAsync(SubscribeRequest request, IServerStreamWriter<Event> stream, ServerCallContext context)
    {
        var term = runtime.Require();
        var (frameworkId, subscription) = await term.Loop.InvokeAsync(l =>
        {
            var sub = l.Subscribe(request);
            return (sub.Outbox.TryPeek(out var first) ? first.Subscribed.FrameworkId : "", sub);
        });
        try
        {
            await runtime.DrainAsync(term, subscription.Outbox, stream, context);
        }
        finally
        {
            term.Loop.Post(l => l.OnSubscriptionClosed(frameworkId, subscription));
        }
    }
}
