using Sched.V1;
using Scheduler.Master.Loop;
using Scheduler.Master.Registry;
using Grpc.Core;

namespace Scheduler.Master.Services;

/// <summary><c>sched.v1.Operator</c>. GetHealth and GetLeader are answered by every master;
/// the rest by the leader's loop.</summary>
public sealed class OperatorService(MasterRuntime runtime) : Operator.OperatorBase
{
    public override Task<GetHealthResponse> GetHealth(GetHealthRequest request, ServerCallContext context) => Task.FromResult(Health());

    public override Task<GetLeaderResponse> GetLeader(GetLeaderRequest request, ServerCallContext context) => Task.FromResult(Leader());

    public override Task<GetStateResponse> GetState(GetStateRequest request, ServerCallContext context) => Invoke(context, l => l.GetState());

    public override Task<GetAgentsResponse> GetAgents(GetAgentsRequest request, ServerCallContext context) => Invoke(context, l => l.GetAgents());

    public override Task<GetFrameworksResponse> GetFrameworks(GetFrameworksRequest request, ServerCallContext context) => Invoke(context, l => l.GetFrameworks());

    public override Task<GetTasksResponse> GetTasks(GetTasksRequest request, ServerCallContext context) => Invoke(context, l => l.GetTasks(request));

    public override Task<GetRolesResponse> GetRoles(GetRolesRequest request, ServerCallContext context) => Invoke(context, l => l.GetRoles());

    public override Task<GetQuotaResponse> GetQuota(GetQuotaRequest request, ServerCallContext context) => Invoke(context, l => l.GetQuota());

    public override async Task<UpdateQuotaResponse> UpdateQuota(UpdateQuotaRequest request, ServerCallContext context)
    {
        await Durable(await Invoke(context, l => l.UpdateQuota(request)));
        return new UpdateQuotaResponse();
    }

    public override async Task<UpdateWeightsResponse> UpdateWeights(UpdateWeightsRequest request, ServerCallContext context)
    {
        await Durable(await Invoke(context, l => l.UpdateWeights(request)));
        return new UpdateWeightsResponse();
    }

    public override Task<DrainAgentResponse> DrainAgent(DrainAgentRequest request, ServerCallContext context) => Invoke(context, l => l.DrainAgent(request));

    public override Task<ReactivateAgentResponse> ReactivateAgent(ReactivateAgentRequest request, ServerCallContext context) => Invoke(context, l => l.ReactivateAgent(request));

    public override async Task<MarkAgentGoneResponse> MarkAgentGone(MarkAgentGoneRequest request, ServerCallContext context)
    {
        var (response, durable) = await Invoke(context, l => l.MarkAgentGone(request));
        await Durable(durable);
        return response;
    }

    public override Task<KillTaskResponse> KillTask(KillTaskRequest request, ServerCallContext context) => Invoke(context, l => l.KillTask(request));

    public override async Task<ReserveResourcesResponse> ReserveResources(ReserveResourcesRequest request, ServerCallContext context)
    {
        var (response, durable) = await Invoke(context, l => l.ReserveResources(request));
        await durable;
        return response;
    }

    public override async Task<UnreserveResourcesResponse> UnreserveResources(UnreserveResourcesRequest request, ServerCallContext context)
    {
        var (response, durable) = await Invoke(context, l => l.UnreserveResources(request));
        await durable;
        return response;
    }

    private Task<T> Invoke<T>(ServerCallContext context, Func<MasterLoop, T> body) => MasterRuntime.TermOf(context).Loop.InvokeAsync(body);

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

    private GetHealthResponse Health()
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

    private GetLeaderResponse Leader()
    {
        var loop = runtime.CurrentLoop;
        if (loop is not null)
        {
            return new GetLeaderResponse { Leader = loop.Self, IsSelf = true };
        }
        var leader = runtime.Election?.CurrentLeader;
        return new GetLeaderResponse { Leader = leader, IsSelf = false };
    }

    public override async Task Subscribe(OperatorSubscribeRequest request, IServerStreamWriter<OperatorEvent> responseStream, ServerCallContext context)
    {
        var term = MasterRuntime.TermOf(context);
        var outbox = await term.Loop.InvokeAsync(l => l.SubscribeOperator());
        try
        {
            await runtime.DrainAsync(term, outbox, responseStream, context.CancellationToken);
        }
        finally
        {
            term.Loop.Post(l => l.UnsubscribeOperator(outbox));
        }
    }
}
