using Sched.V1;
using Scheduler.Master.Loop;
using Scheduler.Master.Registry;
using Scheduler.Protocol;
using Scheduler.Rpc;

namespace Scheduler.Master.Services;

/// <summary><c>sched.v1.Operator</c>. GetHealth and GetLeader are answered by every master;
/// the rest by the leader's loop.</summary>
public sealed class OperatorService(MasterRuntime runtime)
{
    public void Map(ServiceRegistry registry)
    {
        registry.AddUnary(OperatorMethods.GetHealth, (_, _) => Task.FromResult(GetHealth()));
        registry.AddUnary(OperatorMethods.GetLeader, (_, _) => Task.FromResult(GetLeader()));
        registry.AddUnary(OperatorMethods.GetState, (_, _) => Invoke(l => l.GetState()));
        registry.AddUnary(OperatorMethods.GetAgents, (_, _) => Invoke(l => l.GetAgents()));
        registry.AddUnary(OperatorMethods.GetFrameworks, (_, _) => Invoke(l => l.GetFrameworks()));
        registry.AddUnary(OperatorMethods.GetTasks, (r, _) => Invoke(l => l.GetTasks(r)));
        registry.AddUnary(OperatorMethods.GetRoles, (_, _) => Invoke(l => l.GetRoles()));
        registry.AddUnary(OperatorMethods.GetQuota, (_, _) => Invoke(l => l.GetQuota()));
        registry.AddUnary(OperatorMethods.UpdateQuota, async (r, _) =>
        {
            await Durable(await Invoke(l => l.UpdateQuota(r)));
            return new UpdateQuotaResponse();
        });
        registry.AddUnary(OperatorMethods.UpdateWeights, async (r, _) =>
        {
            await Durable(await Invoke(l => l.UpdateWeights(r)));
            return new UpdateWeightsResponse();
        });
        registry.AddUnary(OperatorMethods.DrainAgent, (r, _) => Invoke(l => l.DrainAgent(r)));
        registry.AddUnary(OperatorMethods.ReactivateAgent, (r, _) => Invoke(l => l.ReactivateAgent(r)));
        registry.AddUnary(OperatorMethods.KillTask, (r, _) => Invoke(l => l.KillTask(r)));
        registry.AddUnary(OperatorMethods.ReserveResources, async (r, _) =>
        {
            var (response, durable) = await Invoke(l => l.ReserveResources(r));
            await durable;
            return response;
        });
        registry.AddUnary(OperatorMethods.UnreserveResources, async (r, _) =>
        {
            var (response, durable) = await Invoke(l => l.UnreserveResources(r));
            await durable;
            return response;
        });
        registry.AddServerStreaming(OperatorMethods.Subscribe, SubscribeAsync);
    }

    private Task<T> Invoke<T>(Func<MasterLoop, T> body) => runtime.Require().Loop.InvokeAsync(body);

    private async Task Durable(Task write)
    {
        try
        {
            await write;
        }
        catch (RegistryFencedException)
        {
            throw MasterErrors.NotLeader(runtime.LeaderHint());
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw MasterErrors.Unavailable($"the change was applied but could not be persisted ({e.Message}); retry");
        }
    }

    private GetHealthResponse GetHealth()
    {
        var loop = runtime.CurrentLoop;
        var role = loop is null ? "follower" : loop.Recovering ? "recovering" : runtime.Standalone ? "standalone" : "leader";
        return new GetHealthResponse
        {
            Healthy = true,
            Role = role,
            Version = runtime.Self?.Version ?? "",
            UptimeSeconds = (runtime.Time.GetUtcNow() - runtime.StartedAt).TotalSeconds,
            Master = runtime.Self,
            Memory = Telemetry.ProcessMemoryReader.Read(),
        };
    }

    private GetLeaderResponse GetLeader()
    {
        var loop = runtime.CurrentLoop;
        if (loop is not null)
        {
            return new GetLeaderResponse { Leader = loop.Self, IsSelf = true };
        }
        var leader = runtime.Election?.CurrentLeader;
        return new GetLeaderResponse { Leader = leader, IsSelf = false };
    }

    private async Task SubscribeAsync(OperatorSubscribeRequest request, IServerStreamWriter<OperatorEvent> stream, ServerCallContext context)
    {
        var term = runtime.Require();
        var outbox = await term.Loop.InvokeAsync(l => l.SubscribeOperator());
        try
        {
            await runtime.DrainAsync(term, outbox, stream, context);
        }
        finally
        {
            term.Loop.Post(l => l.UnsubscribeOperator(outbox));
        }
    }
}
